//! The store's story: every public function of the store's modules, driven
//! through two organisations' lives, once on SQLite and once on PostgreSQL,
//! with the same assertions (as atuin's `db_story`). Each step checks what
//! the function returns and what another tenant sees of it (nothing). Some
//! steps run several functions in one write, where the PostgreSQL writer
//! remembers rows or holds appended ones until the batch commits: what a
//! write reads back of its own changes is checked there.
//!
//! `the_story_calls_every_store_function` keeps it whole: a new public
//! function in a store module fails it until the story calls it.

use ironcase_domain::{
    ApiKeyId, Category, CommentId, CustodyAction, EvidenceId, EvidenceKind, IncidentId, InvitationId, IocId, OrgId, Role, SessionId,
    Severity, Status, Timestamp, Tlp, UserId,
};

use ironcase_domain::ioc::IocType;

use crate::{
    alert, apikey, audit, breach, bulk, compliance, event, evidence, incident, invitation, ioc, mfa, notification, offboard, org, privacy,
    report, reset, retention, role, search, session, sso, webhook, Conn, Result, Store, StoreError, Taken, Tx,
};

/// A write that must succeed.
async fn w<T: Send + 'static>(s: &Store, f: impl FnOnce(&Tx) -> Result<T> + Send + 'static) -> T {
    s.write(f).await.expect("a write of the story")
}

/// A read that must succeed.
async fn r<T: Send + 'static>(s: &Store, f: impl FnOnce(&Conn) -> Result<T> + Send + 'static) -> T {
    s.read(f).await.expect("a read of the story")
}

fn new_org(slug: &str, parent: Option<OrgId>, at: i64) -> org::OrgRow {
    org::OrgRow {
        id: OrgId::new(),
        slug: slug.into(),
        name: slug.to_uppercase(),
        plan: "enterprise".into(),
        status: "active".into(),
        parent_id: parent,
        created_at: Timestamp(at),
    }
}

fn new_user(email: &str, at: i64) -> org::UserRow {
    org::UserRow {
        id: UserId::new(),
        email: email.into(),
        name: email.split('@').next().unwrap_or_default().into(),
        password_hash: "$argon2id$not-a-real-hash".into(),
        is_operator: false,
        created_at: Timestamp(at),
    }
}

fn new_incident(o: OrgId, by: UserId, title: &str, tags: &[&str], at: i64) -> incident::IncidentRow {
    incident::IncidentRow {
        org: o,
        id: IncidentId::new(),
        number: 0,
        title: title.into(),
        description: format!("{title}: what the analyst wrote"),
        severity: Severity::High,
        category: Category::Phishing,
        status: Status::Open,
        resolution: None,
        tlp: Tlp::Amber,
        tags: tags.iter().map(|t| t.to_string()).collect(),
        assignee_id: None,
        reporter_id: by,
        created_at: Timestamp(at),
        updated_at: Timestamp(at),
        acknowledged_at: None,
        contained_at: None,
        resolved_at: None,
        closed_at: None,
        version: 1,
    }
}

fn entry(tenant: OrgId, action: &str, at: i64) -> audit::NewEntry {
    audit::NewEntry {
        tenant: tenant.to_string(),
        at: Timestamp(at),
        actor_id: Some("usr_story".into()),
        actor_kind: "user".into(),
        action: action.into(),
        resource_type: Some("incident".into()),
        outcome: "success".into(),
        details: serde_json::json!({ "story": true }),
        ..Default::default()
    }
}

/// Keys for sealed personal data, for the story (the application's are real).
struct ToyKeys;

impl audit::Personal for ToyKeys {
    fn new_key(&self, _: &str, subject: &str) -> std::result::Result<String, String> {
        Ok(format!("key-of-{subject}"))
    }
    fn seal(&self, _: &str, _: &str, key: &str, fields: &str) -> std::result::Result<(String, String), String> {
        Ok((ironcase_domain::audit::commit(key.as_bytes(), fields), format!("{key}:{}", fields.len())))
    }
    fn tag(&self, _: &str, value: &str) -> String {
        value.to_owned()
    }
}

/// Creates an incident as the app does, in one write: its number, the row,
/// its search document, its event and its audit entry.
fn create_incident(c: &Tx, mut i: incident::IncidentRow) -> Result<incident::IncidentRow> {
    i.number = org::next_incident_number(c, i.org)?;
    incident::insert(c, &i)?;
    search::index_new(c, &i)?;
    let data = serde_json::json!({ "number": i.number });
    event::append(c, i.org, Some(i.id), "incident.created", Some("usr_story"), &data, i.created_at)?;
    audit::append(c, entry(i.org, "incident.create", i.created_at.0))?;
    Ok(i)
}

fn ids<T>(rows: &[T], id: impl Fn(&T) -> String) -> Vec<String> {
    rows.iter().map(id).collect()
}

async fn story(s: Store) {
    let acme = new_org("acme", None, 10);
    let emea = new_org("acme-emea", Some(acme.id), 11);
    let globex = new_org("globex", None, 12);
    let (a, b, g) = (acme.id, emea.id, globex.id);

    // Organisations: made, found, listed, paged; a slug is taken once.
    let rows = [acme.clone(), emea.clone(), globex.clone()];
    w(&s, move |c| rows.iter().try_for_each(|o| org::insert_org(c, o))).await;
    let again = new_org("acme", None, 13);
    let taken = s.write(move |c| org::insert_org(c, &again)).await.expect_err("a slug is taken once");
    assert_eq!(taken.taken(), Some(Taken::Slug), "{taken:?}");
    let (got, by_slug, none, all, second, count) = r(&s, move |c| {
        let all = org::list_orgs(c, None, 10)?;
        let second = org::list_orgs(c, Some((all[0].created_at.0, all[0].id)), 1)?;
        Ok((
            org::get_org(c, b)?,
            org::find_org_by_slug(c, "acme-emea")?,
            org::find_org_by_slug(c, "nobody")?,
            all,
            second,
            org::count_orgs(c)?,
        ))
    })
    .await;
    assert_eq!((got.slug.as_str(), got.parent_id), ("acme-emea", Some(a)));
    assert_eq!(by_slug.map(|o| o.id), Some(b));
    assert!(none.is_none());
    assert_eq!(ids(&all, |o| o.slug.clone()), ["acme", "acme-emea", "globex"]);
    assert_eq!(ids(&second, |o| o.slug.clone()), ["acme-emea"], "the page after the first");
    assert_eq!(count, 3);

    // The hierarchy: a child, and its consent to its parent's access.
    assert!(!r(&s, move |c| org::parent_access(c, b)).await);
    // Read auditing: off until turned on, each organisation's own.
    assert!(!r(&s, move |c| org::audit_reads(c, b)).await);
    w(&s, move |c| org::set_audit_reads(c, b, true)).await;
    assert_eq!(r(&s, move |c| Ok((org::audit_reads(c, b)?, org::audit_reads(c, a)?))).await, (true, false));
    let (list, reads) = r(&s, move |c| org::access_controls(c, b)).await;
    assert!(reads && list.ranges().is_empty(), "the allow-list and read auditing in one read");
    w(&s, move |c| org::set_parent_access(c, b, true)).await;
    let (access, children, none) =
        r(&s, move |c| Ok((org::parent_access(c, b)?, org::children(c, a, None, 10)?, org::children(c, g, None, 10)?))).await;
    assert!(access);
    assert_eq!(children.iter().map(|(o, granted)| (o.id, *granted)).collect::<Vec<_>>(), [(b, true)]);
    assert!(none.is_empty());

    // Plans and status: what the writer remembers within a batch follows
    // the writes that change them.
    let (before, after, suspended) = w(&s, move |c| {
        let before = org::plan_of(c, a)?;
        org::set_plan(c, a, "starter", r#"{"members":5}"#)?;
        let after = org::plan_of(c, a)?;
        org::set_status(c, g, "suspended")?;
        Ok((before, after, org::plan_of(c, g)?))
    })
    .await;
    assert_eq!(before.0, "enterprise");
    assert_eq!((after.0.as_str(), after.1.as_str(), after.2.as_str()), ("starter", r#"{"members":5}"#, "active"));
    assert_eq!(suspended.2, "suspended");
    assert_eq!(r(&s, move |c| org::plan_of(c, a)).await, after, "as committed");
    w(&s, move |c| org::set_status(c, g, "active")).await;

    // Quotas: counters add up within a batch and across batches.
    let within = w(&s, move |c| {
        Ok((org::usage_add(c, a, "incidents_per_month", "2026-12", 1)?, org::usage_add(c, a, "incidents_per_month", "2026-12", 2)?))
    })
    .await;
    assert_eq!(within, (1, 3));
    assert_eq!(w(&s, move |c| org::usage_add(c, a, "incidents_per_month", "2026-12", 1)).await, 4);
    let (used, other_period, other_tenant) = r(&s, move |c| {
        Ok((
            org::usage(c, a, "incidents_per_month", "2026-12")?,
            org::usage(c, a, "incidents_per_month", "2027-01")?,
            org::usage(c, g, "incidents_per_month", "2026-12")?,
        ))
    })
    .await;
    assert_eq!((used, other_period, other_tenant), (4, 0, 0));

    // People: accounts, memberships and roles.
    let alice = new_user("alice@acme.example", 20);
    let bob = new_user("bob@acme.example", 21);
    let carol = new_user("carol@globex.example", 22);
    let (al, bo, ca) = (alice.id, bob.id, carol.id);
    let users = [alice.clone(), bob.clone(), carol.clone()];
    w(&s, move |c| {
        users.iter().try_for_each(|u| org::insert_user(c, u))?;
        org::insert_membership(c, a, al, Role::Owner, None, Timestamp(30))?;
        org::insert_membership(c, a, bo, Role::Analyst, None, Timestamp(31))?;
        org::insert_membership(c, g, ca, Role::Owner, None, Timestamp(32))
    })
    .await;
    let twin = new_user("alice@acme.example", 23);
    assert_eq!(s.write(move |c| org::insert_user(c, &twin)).await.expect_err("an address is taken once").taken(), Some(Taken::Email));
    let twice = s.write(move |c| org::insert_membership(c, a, bo, Role::Viewer, None, Timestamp(33))).await.expect_err("one membership");
    assert_eq!(twice.taken(), Some(Taken::Membership));
    let (found, user, role, elsewhere, known, unknown, first) = r(&s, move |c| {
        Ok((
            org::find_user_by_email(c, "bob@acme.example")?.map(|u| u.id),
            org::get_user(c, ca)?,
            org::membership_role(c, a, bo)?,
            org::membership_role(c, g, bo)?,
            org::is_member_by_email(c, a, "bob@acme.example")?,
            org::is_member_by_email(c, g, "bob@acme.example")?,
            org::first_membership(c, bo)?,
        ))
    })
    .await;
    assert_eq!(found, Some(bo));
    assert_eq!(user.email, "carol@globex.example");
    assert_eq!((role, elsewhere), (Some(Role::Analyst), None));
    assert!(known && !unknown);
    assert_eq!(first, Some((a, Role::Analyst)));
    w(&s, move |c| org::update_role(c, a, bo, Role::Lead, None)).await;
    let (members, page2, member, leads, count, foreign, named, bobs) = r(&s, move |c| {
        let members = org::list_members(c, a, None, 1)?;
        let page2 = org::list_members(c, a, Some((members[0].joined_at.0, members[0].user_id)), 10)?;
        Ok((
            members,
            page2,
            org::get_member(c, a, bo)?,
            org::count_role(c, a, Role::Lead)?,
            org::count_members(c, a)?,
            org::get_member(c, g, bo),
            org::member_names(c, a, &[al, bo, ca])?,
            org::organizations_of(c, bo)?,
        ))
    })
    .await;
    let mut named: Vec<UserId> = named.into_iter().map(|(u, _)| u).collect();
    named.sort();
    let mut expected = vec![al, bo];
    expected.sort();
    assert_eq!(named, expected, "only the organisation's members are named");
    assert_eq!(bobs, [("acme".to_owned(), "ACME".to_owned())]);
    assert_eq!(ids(&members, |m| m.email.clone()), ["alice@acme.example"]);
    assert_eq!(ids(&page2, |m| m.email.clone()), ["bob@acme.example"]);
    assert_eq!((member.role, leads, count), (Role::Lead, 1, 2));
    assert!(matches!(foreign, Err(StoreError::NotFound)), "{foreign:?}");

    // Sessions and refresh tokens.
    let sess = |id: SessionId, user: UserId, at: i64| session::SessionRow {
        id,
        org: a,
        user,
        created_at: Timestamp(at),
        expires_at: Timestamp(at + 100),
        revoked_at: None,
    };
    let (s1, s2, s3) = (SessionId::new(), SessionId::new(), SessionId::new());
    let rows = [sess(s1, bo, 40), sess(s2, bo, 41), sess(s3, al, 42)];
    let epoch = r(&s, session::auth_epoch).await;
    w(&s, move |c| {
        let origin = session::Origin { source_ip: Some("192.0.2.7".into()), user_agent: Some("story/1".into()), method: "password".into() };
        rows.iter().try_for_each(|x| session::insert_session(c, x, &origin))?;
        session::insert_refresh(c, "refresh-1", s1, Timestamp(40), Timestamp(140))?;
        session::extend_session(c, s1, Timestamp(500))?;
        session::note_auth_change(c)
    })
    .await;
    let (mine, theirs, any, refresh, epoch_now) = r(&s, move |c| {
        Ok((
            session::session_auth(c, s1, Some(a))?,
            session::session_auth(c, s1, Some(g))?,
            session::session_auth(c, s1, None)?,
            session::get_refresh(c, "refresh-1")?,
            session::auth_epoch(c)?,
        ))
    })
    .await;
    let mine = mine.expect("the session, in its organisation");
    assert_eq!((mine.role, mine.session.expires_at, mine.org_status.as_str()), (Some(Role::Lead), Timestamp(500), "active"));
    assert!(theirs.is_none(), "another organisation's session does not exist");
    assert_eq!(any.map(|x| x.session.user), Some(bo));
    assert_eq!(refresh.map(|x| (x.session, x.used_at)), Some((s1, None)));
    assert_eq!(epoch_now, epoch + 1);
    assert!(!mine.mfa_pending);
    // An organisation that requires a second factor: a member without one
    // may only enrol.
    let (before, after, pending, elsewhere) = w(&s, move |c| {
        let before = org::mfa_required(c, a)?;
        org::set_mfa_required(c, a, true)?;
        Ok((before, org::mfa_required(c, a)?, session::session_auth(c, s1, Some(a))?, org::mfa_required(c, g)?))
    })
    .await;
    assert!(!before && after && !elsewhere);
    assert_eq!(pending.map(|x| x.mfa_pending), Some(true));
    w(&s, move |c| org::set_mfa_required(c, a, false)).await;
    // An organisation's session timeouts and allow-list come with its
    // sessions; a re-authenticated session remembers when.
    let ranges = ironcase_domain::net::AllowList::from_stored("192.0.2.0/24 2001:db8::/32").expect("ranges");
    let stored = ranges.clone();
    let (policy, other_policy, auth, lists, foreign_reauth) = w(&s, move |c| {
        org::set_session_policy(c, a, org::SessionPolicy { idle_secs: Some(600), max_secs: Some(3600) })?;
        org::set_ip_allowlist(c, a, &stored)?;
        session::reauthenticated(c, a, s1, Timestamp(44))?;
        let foreign = session::reauthenticated(c, g, s1, Timestamp(45));
        let lists = (org::ip_allowlist(c, a)?, org::ip_allowlist(c, g)?);
        Ok((org::session_policy(c, a)?, org::session_policy(c, g)?, session::session_auth(c, s1, Some(a))?, lists, foreign))
    })
    .await;
    assert_eq!(policy, org::SessionPolicy { idle_secs: Some(600), max_secs: Some(3600) });
    assert_eq!(other_policy, org::SessionPolicy::default());
    let auth = auth.expect("the session");
    assert_eq!((auth.policy, auth.authenticated_at, &auth.ip_allowlist), (policy, Timestamp(44), &ranges));
    assert_eq!((&lists.0, lists.1.is_empty()), (&ranges, true));
    assert!(matches!(foreign_reauth, Err(StoreError::NotFound)), "another organisation's session is not there");
    w(&s, move |c| {
        org::set_session_policy(c, a, org::SessionPolicy::default())?;
        org::set_ip_allowlist(c, a, &Default::default())
    })
    .await;
    // An organisation's own roles: found by id or name in their
    // organisation only; a member holding one carries it into their session;
    // one in use is known to be.
    let reviewer = role::CustomRoleRow {
        id: ironcase_domain::RoleId::new(),
        org: a,
        name: "reviewer".into(),
        base: Role::Analyst,
        grant: vec![ironcase_domain::Permission::AuditRead],
        revoke: vec![ironcase_domain::Permission::EvidenceDownload],
        own_or_assigned: true,
        tlp_max: Some(Tlp::Amber),
        categories: Some(ironcase_domain::Categories::of(&[Category::Malware, Category::Phishing])),
        created_at: Timestamp(47),
        updated_at: Timestamp(47),
    };
    let (rid, row) = (reviewer.id, reviewer.clone());
    let (listed_roles, by_name, theirs_role, auth_role, used) = w(&s, move |c| {
        role::insert(c, &row)?;
        org::update_role(c, a, bo, Role::Analyst, Some(rid))?;
        let auth = session::session_auth(c, s1, Some(a))?.and_then(|x| x.custom_role);
        let used = role::in_use(c, a, rid, Timestamp(48))?;
        Ok((role::list(c, a)?, role::find_by_name(c, a, "reviewer")?, role::get(c, g, rid), auth, used))
    })
    .await;
    assert_eq!(listed_roles, std::slice::from_ref(&reviewer));
    assert_eq!(by_name.as_ref(), Some(&reviewer));
    assert!(matches!(theirs_role, Err(StoreError::NotFound)), "another organisation's role is not there");
    assert_eq!(auth_role.as_ref(), Some(&reviewer), "the session carries the role");
    assert!(used);
    let renamed = role::CustomRoleRow { name: "auditor".into(), own_or_assigned: false, updated_at: Timestamp(49), ..reviewer.clone() };
    let r2 = renamed.clone();
    let (got_role, member_role, still_used, gone) = w(&s, move |c| {
        role::update(c, &r2)?;
        let got = role::get(c, a, rid)?;
        org::update_role(c, a, bo, Role::Lead, None)?;
        let member = org::get_member(c, a, bo)?.custom_role;
        let used = role::in_use(c, a, rid, Timestamp(50))?;
        role::delete(c, a, rid)?;
        Ok((got, member, used, role::list(c, a)?))
    })
    .await;
    assert_eq!((got_role, member_role, still_used, gone.is_empty()), (renamed, None, false, true));

    // Single sign-on: an organisation's provider is its own; a pending login
    // and a one-time code are taken once, and not after they expire.
    let cfg = sso::SsoConfigRow {
        org: a,
        issuer: "https://idp.acme.example".into(),
        client_id: "ironcase".into(),
        sealed_secret: b"sealed".to_vec(),
        scopes: vec!["email".into(), "groups".into()],
        allowed_domains: vec!["acme.example".into()],
        group_claim: "groups".into(),
        role_mapping: r#"{"responders":"analyst"}"#.into(),
        default_role: Some("viewer".into()),
        jit: true,
        sso_required: true,
        password_roles: vec![Role::Owner, Role::Admin],
        updated_at: Timestamp(47),
    };
    let login = |hash: &str, expires: i64| sso::PendingLogin {
        state_hash: hash.into(),
        org: a,
        nonce: "nonce".into(),
        pkce_verifier: "verifier".into(),
        binding_hash: "binding".into(),
        mode: "api".into(),
        created_at: Timestamp(47),
        expires_at: Timestamp(expires),
    };
    let (c1, l1, l2) = (cfg.clone(), login("state-1", 100), login("state-2", 48));
    let (mine_cfg, their_cfg, taken, again, expired, linked, unknown, code, code_again, code_expired, by_domain, removed, gone) =
        w(&s, move |c| {
            sso::put_config(c, &c1)?;
            sso::put_config(c, &sso::SsoConfigRow { jit: false, ..c1.clone() })?;
            sso::insert_login(c, &l1)?;
            sso::insert_login(c, &l2)?;
            sso::link_identity(c, "https://idp.acme.example", "sub-1", bo, Timestamp(47))?;
            sso::insert_code(c, "code-1", a, bo, Timestamp(60))?;
            sso::insert_code(c, "code-2", a, bo, Timestamp(48))?;
            Ok((
                sso::config(c, a)?,
                sso::config(c, g)?,
                sso::take_login(c, "state-1", Timestamp(50))?,
                sso::take_login(c, "state-1", Timestamp(50))?,
                sso::take_login(c, "state-2", Timestamp(50))?,
                sso::identity(c, "https://idp.acme.example", "sub-1")?,
                sso::identity(c, "https://other.example", "sub-1")?,
                sso::take_code(c, "code-1", Timestamp(50))?,
                sso::take_code(c, "code-1", Timestamp(50))?,
                sso::take_code(c, "code-2", Timestamp(50))?,
                (sso::slug_for_domain(c, "acme.example")?, sso::slug_for_domain(c, "acme")?, sso::slug_for_domain(c, "%")?),
                sso::delete_config(c, a)?,
                sso::config(c, a)?,
            ))
        })
        .await;
    assert_eq!(mine_cfg, Some(sso::SsoConfigRow { jit: false, ..cfg }), "replaced");
    assert!(their_cfg.is_none(), "another organisation's provider is not there");
    assert_eq!(taken, Some(login("state-1", 100)));
    assert_eq!((again, expired), (None, None), "once, and not after it expires");
    assert_eq!((linked, unknown), (Some(bo), None));
    assert_eq!((code, code_again, code_expired), (Some((a, bo)), None, None));
    assert_eq!(by_domain, (Some("acme".to_owned()), None, None), "a whole domain, never a pattern");
    assert!(removed && gone.is_none());

    // A new password ends the account's other sessions, in every organisation.
    let s4 = SessionId::new();
    let elsewhere = session::SessionRow { org: g, ..sess(s4, al, 43) };
    let (ended, hash, kept, other) = w(&s, move |c| {
        session::insert_session(c, &elsewhere, &session::Origin::default())?;
        let n = session::revoke_account_sessions(c, al, s3, Timestamp(46), "password_changed")?;
        org::set_password_hash(c, al, "hash-after")?;
        Ok((n, org::get_user(c, al)?.password_hash, session::session_auth(c, s3, Some(a))?, session::session_auth(c, s4, Some(g))?))
    })
    .await;
    assert_eq!((ended, hash.as_str()), (1, "hash-after"));
    assert_eq!(kept.map(|x| x.session.revoked_at), Some(None), "the session that changed it stays");
    assert_eq!(other.and_then(|x| x.session.revoked_at), Some(Timestamp(46)));
    // A member's own sessions: listed with where they began, last seen
    // when used, the others ended at once.
    let (listed, page2, theirs_listed, seen) = w(&s, move |c| {
        session::touch_session(c, s2, Timestamp(90))?;
        let listed = session::list_member_sessions(c, a, bo, Timestamp(45), None, 1)?;
        let page2 =
            session::list_member_sessions(c, a, bo, Timestamp(45), Some((listed[0].session.created_at.0, listed[0].session.id)), 10)?;
        Ok((listed, page2, session::list_member_sessions(c, g, bo, Timestamp(45), None, 10)?, session::last_seen(c, s2)?))
    })
    .await;
    assert_eq!(listed.iter().map(|x| x.session.id).collect::<Vec<_>>(), [s1]);
    assert_eq!(listed[0].origin.user_agent.as_deref(), Some("story/1"));
    assert_eq!(listed[0].last_seen_at, Timestamp(40), "last seen at its login");
    assert_eq!(page2.iter().map(|x| x.session.id).collect::<Vec<_>>(), [s2]);
    assert!(theirs_listed.is_empty());
    assert_eq!(seen, Some(Timestamp(90)));
    // A browser's cookie names a session by its hash, whatever the tenant.
    let (named, unnamed) = w(&s, move |c| {
        session::bind_browser(c, s2, "browser-hash")?;
        Ok((session::by_browser(c, "browser-hash")?, session::by_browser(c, "other-hash")?))
    })
    .await;
    assert_eq!((named, unnamed), (Some((s2, a, Timestamp(90))), None));
    let (first_use, second_use) =
        w(&s, move |c| Ok((session::use_refresh(c, "refresh-1", Timestamp(50))?, session::use_refresh(c, "refresh-1", Timestamp(51))?)))
            .await;
    assert!(first_use && !second_use, "a refresh token is used once");
    let (others, revoked) = w(&s, move |c| {
        let others = session::revoke_other_sessions(c, a, bo, s1, Timestamp(59), "ended_by_member")?;
        session::revoke_session(c, s2, Timestamp(60), "logout")?;
        Ok((others, session::revoke_member_sessions(c, a, bo, Timestamp(61), "removed")?))
    })
    .await;
    assert_eq!(others, 1, "every other session: s2");
    assert_eq!(revoked, 1, "the one session still live");
    let (r1, r3) = r(&s, move |c| Ok((session::session_auth(c, s1, Some(a))?, session::session_auth(c, s3, Some(a))?))).await;
    assert_eq!(r1.and_then(|x| x.session.revoked_at), Some(Timestamp(61)));
    assert_eq!(r3.and_then(|x| x.session.revoked_at), None, "another member's stays");

    // Failed logins, per account and source.
    w(&s, move |c| {
        session::record_login_failure(c, "alice@acme.example", "ip:192.0.2.1", Timestamp(70))?;
        session::record_login_failure(c, "alice@acme.example", "ip:192.0.2.1", Timestamp(71))?;
        session::record_login_failure(c, "alice@acme.example", "device:d1", Timestamp(72))
    })
    .await;
    let fails = r(&s, |c| session::login_failures(c, "alice@acme.example", "ip:192.0.2.1", Timestamp(0))).await;
    assert_eq!(
        fails,
        session::LoginFailures {
            from_source: 2,
            oldest_from_source: Some(Timestamp(70)),
            untrusted: 2,
            newest_untrusted: Some(Timestamp(71))
        }
    );
    w(&s, |c| session::clear_login_failures(c, "alice@acme.example", "ip:192.0.2.1", Timestamp(0))).await;
    let (cleared, device) = r(&s, |c| {
        Ok((
            session::login_failures(c, "alice@acme.example", "ip:192.0.2.1", Timestamp(0))?,
            session::login_failures(c, "alice@acme.example", "device:d1", Timestamp(0))?,
        ))
    })
    .await;
    assert_eq!((cleared.from_source, cleared.untrusted), (0, 0));
    assert_eq!(device.from_source, 1, "another source's failures stay");

    // A second factor: an enrolment replaced until confirmed, each step
    // accepted once, backup codes spent once, challenges counted and ended.
    let (started, again, confirmed_early) = w(&s, move |c| {
        Ok((
            mfa::begin_totp(c, al, b"sealed-a", Timestamp(73))?,
            mfa::begin_totp(c, al, b"sealed-b", Timestamp(74))?,
            mfa::accept_step(c, al, 10, None)?,
        ))
    })
    .await;
    assert!(started && again && !confirmed_early, "an unconfirmed authenticator accepts no code");
    let (confirmed, replayed, later, restarted) = w(&s, move |c| {
        Ok((
            mfa::accept_step(c, al, 10, Some(Timestamp(75)))?,
            mfa::accept_step(c, al, 10, None)?,
            mfa::accept_step(c, al, 11, None)?,
            mfa::begin_totp(c, al, b"sealed-c", Timestamp(76))?,
        ))
    })
    .await;
    assert!(confirmed && !replayed && later && !restarted, "once confirmed, a step once and no new enrolment");
    let (row, none) = r(&s, move |c| Ok((mfa::totp(c, al)?, mfa::totp(c, bo)?))).await;
    let row = row.expect("an authenticator");
    assert_eq!((row.sealed_secret.as_slice(), row.confirmed_at, row.last_step), (&b"sealed-b"[..], Some(Timestamp(75)), 11));
    assert!(none.is_none());
    let hashes = vec!["h1".to_owned(), "h2".to_owned()];
    let (first, twice, left) = w(&s, move |c| {
        mfa::replace_backup_codes(c, al, &hashes, Timestamp(77))?;
        let first = mfa::use_backup_code(c, al, "h1", Timestamp(78))?;
        Ok((first, mfa::use_backup_code(c, al, "h1", Timestamp(79))?, mfa::backup_codes_left(c, al)?))
    })
    .await;
    assert!(first && !twice);
    assert_eq!(left, 1);
    let ch = mfa::ChallengeRow { user: al, org: a, source: "ip:192.0.2.1".into(), expires_at: Timestamp(500), tries: 0 };
    let (tried, tried_again, ended, ended_twice, gone) = w(&s, move |c| {
        mfa::insert_challenge(c, "challenge-1", &ch, Timestamp(80))?;
        let tried = mfa::try_challenge(c, "challenge-1")?;
        let tried_again = mfa::try_challenge(c, "challenge-1")?;
        let ended = mfa::end_challenge(c, "challenge-1")?;
        Ok((tried, tried_again, ended, mfa::end_challenge(c, "challenge-1")?, mfa::try_challenge(c, "challenge-1")?))
    })
    .await;
    assert_eq!(tried.map(|x| (x.user, x.org, x.tries)), Some((al, a, 1)));
    assert_eq!(tried_again.map(|x| x.tries), Some(2));
    assert!(ended && !ended_twice && gone.is_none());
    w(&s, move |c| mfa::remove(c, al)).await;
    let (row, left) = r(&s, move |c| Ok((mfa::totp(c, al)?, mfa::backup_codes_left(c, al)?))).await;
    assert!(row.is_none() && left == 0, "removed with its backup codes");

    // Password resets: a token works once, not after it expires, and taking
    // one spends the account's others.
    w(&s, move |c| {
        reset::insert(c, "reset-1", al, Timestamp(70), Timestamp(100))?;
        reset::insert(c, "reset-2", al, Timestamp(71), Timestamp(100))?;
        reset::insert(c, "reset-3", bo, Timestamp(72), Timestamp(80))
    })
    .await;
    let (asked, expired, taken, again, spent) = w(&s, move |c| {
        let asked = reset::count_since(c, al, Timestamp(71))?;
        let expired = reset::take(c, "reset-3", Timestamp(85))?;
        let taken = reset::take(c, "reset-1", Timestamp(85))?;
        Ok((asked, expired, taken, reset::take(c, "reset-1", Timestamp(86))?, reset::take(c, "reset-2", Timestamp(86))?))
    })
    .await;
    assert_eq!((asked, expired, taken, again, spent), (1, None, Some(al), None, None));
    let (of_al, of_bo) = r(&s, move |c| Ok((org::count_memberships(c, al)?, org::count_memberships(c, bo)?))).await;
    assert_eq!((of_al, of_bo), (1, 1));

    // Signing keys, sealed.
    w(&s, |c| {
        session::insert_signing_key(c, "k1", "HS256", b"sealed-1", Timestamp(80))?;
        session::insert_signing_key(c, "k2", "HS256", b"sealed-2", Timestamp(81))
    })
    .await;
    let keys = r(&s, session::signing_keys).await;
    assert_eq!(
        keys,
        [("k2".to_owned(), "HS256".to_owned(), b"sealed-2".to_vec()), ("k1".to_owned(), "HS256".to_owned(), b"sealed-1".to_vec())]
    );

    // API keys: found by their hash only, another tenant's is absent.
    let key = apikey::ApiKeyRow {
        id: ApiKeyId::new(),
        org: a,
        name: "ci".into(),
        role: Role::Analyst,
        custom_role: None,
        key_hash: "hash-1".into(),
        key_prefix: "ick_aaaa".into(),
        created_by: al,
        created_at: Timestamp(90),
        expires_at: None,
        revoked_at: None,
        last_used_at: None,
        tlp_max: Some(Tlp::Green),
        rate_per_minute: Some(60),
        allowed_cidrs: Default::default(),
        public_key: None,
    };
    let k = key.id;
    w(&s, move |c| {
        apikey::insert(c, &key)?;
        apikey::touch(c, k, Timestamp(91))?;
        apikey::replace_secret(c, a, k, "hash-2", "ick_bbbb")?;
        let row = apikey::get(c, a, k)?;
        let cidrs = ironcase_domain::net::AllowList::from_stored("198.51.100.0/24").expect("ranges");
        apikey::update(
            c,
            &apikey::ApiKeyRow { name: "ci-renamed".into(), allowed_cidrs: cidrs, public_key: Some("pk".into()), ..row.clone() },
        )?;
        assert!(matches!(apikey::update(c, &apikey::ApiKeyRow { org: g, ..row }), Err(StoreError::NotFound)));
        // A request signature is accepted once, until it expires.
        assert!(apikey::remember_signature(c, "sig-1", Timestamp(200), Timestamp(100))?);
        assert!(!apikey::remember_signature(c, "sig-1", Timestamp(200), Timestamp(150))?, "a replay");
        assert!(apikey::remember_signature(c, "sig-1", Timestamp(300), Timestamp(200))?, "forgotten once expired");
        Ok(())
    })
    .await;
    let (listed, none, got, foreign, old, new) = r(&s, move |c| {
        Ok((
            apikey::list(c, a, None, 10)?,
            apikey::list(c, g, None, 10)?,
            apikey::get(c, a, k)?,
            apikey::get(c, g, k),
            apikey::find_by_hash(c, "hash-1")?,
            apikey::find_by_hash(c, "hash-2")?,
        ))
    })
    .await;
    assert_eq!(listed.iter().map(|x| x.id).collect::<Vec<_>>(), [k]);
    assert!(none.is_empty());
    assert_eq!(
        (got.key_prefix.as_str(), got.name.as_str(), got.last_used_at, got.tlp_max, got.rate_per_minute, got.allowed_cidrs.ranges()),
        ("ick_bbbb", "ci-renamed", Some(Timestamp(91)), Some(Tlp::Green), Some(60), vec!["198.51.100.0/24".to_owned()])
    );
    assert_eq!(got.public_key.as_deref(), Some("pk"));
    assert!(matches!(foreign, Err(StoreError::NotFound)));
    assert!(old.is_none(), "the replaced secret no longer works");
    assert_eq!(new.map(|x| x.id), Some(k));
    w(&s, move |c| apikey::revoke(c, a, k, Timestamp(92))).await;
    let (revoked, listed, by_hash) =
        r(&s, move |c| Ok((apikey::get(c, a, k), apikey::list(c, a, None, 10)?, apikey::find_by_hash(c, "hash-2")?))).await;
    assert!(matches!(revoked, Err(StoreError::NotFound)), "a revoked key is gone from its organisation");
    assert!(listed.is_empty());
    assert_eq!(by_hash.map(|x| x.revoked_at), Some(Some(Timestamp(92))), "and known as revoked by its hash");
    let not_theirs = s.write(move |c| apikey::revoke(c, g, k, Timestamp(93))).await;
    assert!(matches!(not_theirs, Err(StoreError::NotFound)), "{not_theirs:?}");

    // Invitations: pending until accepted or revoked.
    let invite = |email: &str, hash: &str, at: i64| invitation::InvitationRow {
        id: InvitationId::new(),
        org: a,
        email: email.into(),
        role: Role::Viewer,
        custom_role: None,
        token_hash: hash.into(),
        invited_by: al,
        created_at: Timestamp(at),
        expires_at: Timestamp(at + 1000),
        accepted_at: None,
        revoked_at: None,
    };
    let (i1, i2) = (invite("dave@example.org", "invite-1", 100), invite("erin@example.org", "invite-2", 101));
    let (id1, id2) = (i1.id, i2.id);
    w(&s, move |c| {
        invitation::insert(c, &i1)?;
        invitation::insert(c, &i2)
    })
    .await;
    let (pending, page2, expired, elsewhere, found) = r(&s, move |c| {
        let pending = invitation::list_pending(c, a, Timestamp(102), None, 1)?;
        let page2 = invitation::list_pending(c, a, Timestamp(102), Some((pending[0].created_at.0, pending[0].id)), 10)?;
        Ok((
            pending,
            page2,
            invitation::list_pending(c, a, Timestamp(5000), None, 10)?,
            invitation::list_pending(c, g, Timestamp(102), None, 10)?,
            invitation::find_by_hash(c, "invite-1")?,
        ))
    })
    .await;
    let (for_dave, dave_elsewhere, dave_later) = r(&s, move |c| {
        Ok((
            invitation::pending_for(c, a, "dave@example.org", Timestamp(102))?,
            invitation::pending_for(c, g, "dave@example.org", Timestamp(102))?,
            invitation::pending_for(c, a, "dave@example.org", Timestamp(5000))?,
        ))
    })
    .await;
    assert_eq!(for_dave.map(|i| i.id), Some(id1));
    assert!(dave_elsewhere.is_none() && dave_later.is_none());
    assert_eq!(ids(&pending, |i| i.email.clone()), ["dave@example.org"]);
    assert_eq!(ids(&page2, |i| i.email.clone()), ["erin@example.org"]);
    assert!(expired.is_empty() && elsewhere.is_empty());
    assert_eq!(found.map(|i| i.id), Some(id1));
    w(&s, move |c| {
        invitation::accept(c, a, id1, Timestamp(103))?;
        invitation::revoke(c, a, id2, Timestamp(104))
    })
    .await;
    let (pending, accepted) =
        r(&s, move |c| Ok((invitation::list_pending(c, a, Timestamp(105), None, 10)?, invitation::find_by_hash(c, "invite-1")?))).await;
    assert!(pending.is_empty());
    assert_eq!(accepted.and_then(|i| i.accepted_at), Some(Timestamp(103)));

    // Incidents: numbered per organisation; in the write that made them a
    // tag filter finds them (their tags held by the PostgreSQL writer are
    // sent first).
    let phish = new_incident(a, al, "Phishing wave against finance", &["phishing", "q4"], 200);
    let ransom = new_incident(a, bo, "Ransomware on file shares", &["ransomware"], 201);
    let theirs = new_incident(g, ca, "Phishing at globex", &["phishing"], 202);
    let (p, rw, t) = (phish.id, ransom.id, theirs.id);
    let (numbers, tagged) = w(&s, move |c| {
        let made = [create_incident(c, phish)?, create_incident(c, ransom)?, create_incident(c, theirs)?];
        let f = incident::Filter { tag: Some("phishing".into()), ..Default::default() };
        let tagged = incident::list(c, a, &f, incident::Sort::CreatedDesc, None, 10)?;
        Ok((made.map(|i| i.number), ids(&tagged, |i| i.title.clone())))
    })
    .await;
    assert_eq!(numbers, [1, 2, 1], "numbers are per organisation");
    assert_eq!(tagged, ["Phishing wave against finance"]);
    let (by_id, by_number, foreign, newest, older, oldest, unseen) = r(&s, move |c| {
        let all = incident::Filter::default();
        // A sight of other categories (or above their TLP) has none of them.
        let malware = ironcase_domain::Sight { tlp_max: None, categories: Some(ironcase_domain::Categories::of(&[Category::Malware])) };
        let green = ironcase_domain::Sight { tlp_max: Some(Tlp::Green), categories: None };
        let unseen = [malware, green]
            .map(|sight| incident::list(c, a, &incident::Filter { sight, ..Default::default() }, incident::Sort::CreatedAsc, None, 10));
        let newest = incident::list(c, a, &all, incident::Sort::CreatedDesc, None, 1)?;
        let key = incident::Sort::CreatedDesc.key(&newest[0]);
        let older = incident::list(c, a, &all, incident::Sort::CreatedDesc, Some((key, newest[0].id)), 10)?;
        Ok((
            incident::get(c, a, incident::IncidentRef::Id(p))?,
            incident::get(c, a, incident::IncidentRef::Number(2))?,
            (incident::get(c, g, incident::IncidentRef::Id(p)), incident::get(c, a, incident::IncidentRef::Id(t))),
            newest,
            older,
            incident::list(c, a, &all, incident::Sort::CreatedAsc, None, 10)?,
            unseen.map(|l| l.map(|l| l.len())),
        ))
    })
    .await;
    assert!(matches!(unseen, [Ok(0), Ok(0)]), "{unseen:?}");
    // The dashboard's counts: by status and severity, and per day, within a sight.
    let (by_status, by_severity, days, none_seen) = r(&s, move |c| {
        let malware = ironcase_domain::Sight { tlp_max: None, categories: Some(ironcase_domain::Categories::of(&[Category::Malware])) };
        Ok((
            incident::counts(c, a, ironcase_domain::Sight::ALL, incident::CountBy::Status)?,
            incident::counts(c, a, ironcase_domain::Sight::ALL, incident::CountBy::Severity)?,
            incident::per_day(c, a, ironcase_domain::Sight::ALL, Timestamp(0))?,
            incident::counts(c, a, malware, incident::CountBy::Status)?,
        ))
    })
    .await;
    assert_eq!(by_status, [("open".to_owned(), 2)]);
    assert_eq!(by_severity.iter().map(|(_, n)| n).sum::<i64>(), 2);
    assert_eq!(days, [(0, 2, 0)], "both opened on the first day, none closed");
    assert!(none_seen.is_empty());
    assert_eq!((by_id.number, by_number.id), (1, rw));
    assert!(matches!(foreign, (Err(StoreError::NotFound), Err(StoreError::NotFound))), "{foreign:?}");
    assert_eq!(ids(&newest, |i| i.number.to_string()), ["2"]);
    assert_eq!(ids(&older, |i| i.number.to_string()), ["1"]);
    assert_eq!(ids(&oldest, |i| i.number.to_string()), ["1", "2"]);
    // An update checks the version it was read at.
    let mut changed = by_id.clone();
    changed.title = "Phishing wave against finance and HR".into();
    changed.tags = vec!["phishing".into(), "hr".into()];
    changed.updated_at = Timestamp(210);
    changed.version = 2;
    let stale = changed.clone();
    let (applied, refused) = w(&s, move |c| {
        let applied = incident::update(c, &changed, 1, true)?;
        Ok((applied, incident::update(c, &stale, 1, true)?))
    })
    .await;
    assert!(applied && !refused, "the second update read version 1, which is gone");
    let hr = r(&s, move |c| {
        incident::list(c, a, &incident::Filter { tag: Some("hr".into()), ..Default::default() }, incident::Sort::UpdatedDesc, None, 10)
    })
    .await;
    assert_eq!(ids(&hr, |i| i.version.to_string()), ["2"]);

    // Comments, and the search document that covers them.
    let comment = incident::CommentRow {
        org: a,
        id: CommentId::new(),
        incident_id: p,
        author_id: bo,
        body: "the lure came from bulletproof hosting".into(),
        created_at: Timestamp(220),
        author_erased: false,
    };
    w(&s, move |c| {
        incident::insert_comment(c, &comment)?;
        search::reindex(c, a, p)
    })
    .await;
    let (comments, none, document) =
        r(&s, move |c| Ok((incident::comments(c, a, p)?, incident::comments(c, g, p)?, search::document(c, a, p)?))).await;
    assert_eq!(ids(&comments, |m| m.body.clone()), ["the lure came from bulletproof hosting"]);
    assert!(none.is_empty());
    let document = document.expect("a document");
    assert!(
        document.starts_with(&search::new_document(
            "Phishing wave against finance and HR",
            "Phishing wave against finance: what the analyst wrote"
        )),
        "{document}"
    );
    assert!(document.contains("bulletproof hosting"), "{document}");

    // Indicators: one per value, sighted on incidents, under a TLP ceiling.
    let domain = ioc::IocRow {
        org: a,
        id: IocId::new(),
        kind: IocType::Domain,
        value: "evil.example".into(),
        tlp: Tlp::Amber,
        tags: vec!["c2".into()],
        created_at: Timestamp(230),
    };
    let x = domain.id;
    let (first, again, second) = w(&s, move |c| {
        ioc::insert(c, &domain, "usr_story")?;
        Ok((
            ioc::link(c, a, x, p, Some("in the lure"), Timestamp(231), "usr_story")?,
            ioc::link(c, a, x, p, None, Timestamp(232), "usr_story")?,
            ioc::link(c, a, x, rw, None, Timestamp(233), "usr_story")?,
        ))
    })
    .await;
    assert!(first && !again && second, "a second sighting on one incident is the same one");
    let (found, foreign, on_p, under_green, seen, one) = r(&s, move |c| {
        Ok((
            ioc::find(c, a, IocType::Domain, "evil.example")?,
            ioc::find(c, g, IocType::Domain, "evil.example")?,
            ioc::for_incident(c, a, p, None, None, 10)?,
            ioc::for_incident(c, a, p, Some(Tlp::Green), None, 10)?,
            ioc::sightings(c, a, x)?,
            ioc::sighting(c, a, x, p)?,
        ))
    })
    .await;
    assert_eq!(found.map(|i| i.tags), Some(vec!["c2".to_owned()]));
    assert!(foreign.is_none());
    assert_eq!(on_p.iter().map(|sg| sg.ioc.id).collect::<Vec<_>>(), [x]);
    assert!(under_green.is_empty(), "an amber indicator is above a green ceiling");
    assert_eq!(seen.iter().map(|sg| sg.incident_number).collect::<Vec<_>>(), [1, 2]);
    let one = one.expect("the sighting");
    assert_eq!((one.note.as_deref(), one.first_seen, one.last_seen), (Some("in the lure"), Timestamp(231), Timestamp(232)));

    // Search: words, facets, highlights, similar incidents.
    let spec = |words: &[&str]| search::Spec { required: words.iter().map(|w| vec![w.to_string()]).collect(), ..Default::default() };
    let (bulletproof, phishing, foreign, similar) = r(&s, move |c| {
        Ok((
            search::run(c, a, &spec(&["bulletproof"]), 0, 10)?,
            search::run(c, a, &spec(&["phishing"]), 0, 10)?,
            search::run(c, g, &spec(&["bulletproof"]), 0, 10)?,
            search::similar(c, a, p, &["ransomware".to_owned()], ironcase_domain::Sight::ALL, 10)?,
        ))
    })
    .await;
    assert_eq!(bulletproof.hits.iter().map(|h| h.incident.id).collect::<Vec<_>>(), [p]);
    assert_eq!((phishing.total, phishing.facets.severity.get("high")), (1, Some(&1)), "{:?}", phishing.facets);
    assert_eq!(foreign.total, 0);
    assert_eq!(similar.iter().map(|m| m.incident.id).collect::<Vec<_>>(), [rw]);
    assert_eq!(similar[0].shared_iocs, [("domain".to_owned(), "evil.example".to_owned())]);
    let marked = search::highlight("the lure came from bulletproof hosting", &["bulletproof".to_owned()]).expect("a highlight");
    assert!(marked.contains("<mark>bulletproof</mark>"), "{marked}");
    w(&s, move |c| ioc::unlink(c, a, x, rw)).await;
    assert_eq!(r(&s, move |c| ioc::sightings(c, a, x)).await.len(), 1);

    // Evidence: a data key per organisation, a chain of custody, a
    // tombstone that keeps the history.
    let no_key = r(&s, move |c| evidence::data_key_current(c, a)).await;
    assert!(no_key.is_none());
    let item = evidence::EvidenceRow {
        org: a,
        id: EvidenceId::new(),
        incident_id: p,
        name: "mail.eml".into(),
        kind: EvidenceKind::Document,
        description: Some("the lure".into()),
        size: 1234,
        sha256: "ab".repeat(32),
        collected_by: Some("bob".into()),
        collected_at: Some(Timestamp(239)),
        uploaded_by: bo.to_string(),
        created_at: Timestamp(240),
        data_key_id: "dk1".into(),
        blob_key: Some("blobs/1".into()),
        deleted_at: None,
        deleted_by: None,
        delete_reason: None,
    };
    let e = item.id;
    let step = move |action: CustodyAction, at: i64| evidence::CustodyRow {
        seq: 0,
        action,
        actor_id: Some(bo.to_string()),
        actor_kind: "user".into(),
        at: Timestamp(at),
        source_ip: Some("192.0.2.9".into()),
        reason: None,
        to: None,
    };
    let seqs = w(&s, move |c| {
        evidence::data_key_insert(c, a, "dk1", b"wrapped-1", Timestamp(238))?;
        evidence::insert(c, &item)?;
        Ok((
            evidence::custody_append(c, a, e, &step(CustodyAction::Uploaded, 240))?,
            evidence::custody_append(c, a, e, &step(CustodyAction::Downloaded, 241))?,
        ))
    })
    .await;
    assert_eq!(seqs, (1, 2));
    let (key, wrapped, got, foreign, listed, bytes, chain, rest) = r(&s, move |c| {
        Ok((
            evidence::data_key_current(c, a)?,
            evidence::data_key(c, a, "dk1")?,
            evidence::get(c, a, e)?,
            evidence::get(c, g, e),
            evidence::list(c, a, p, None, 10)?,
            evidence::stored_bytes(c, a)?,
            evidence::custody(c, a, e, 0, 10)?,
            evidence::custody(c, a, e, 1, 10)?,
        ))
    })
    .await;
    assert_eq!(key, Some(("dk1".to_owned(), b"wrapped-1".to_vec())));
    assert_eq!(wrapped, b"wrapped-1");
    assert_eq!((got.size, got.kind), (1234, EvidenceKind::Document));
    assert!(matches!(foreign, Err(StoreError::NotFound)));
    assert_eq!(listed.iter().map(|x| x.id).collect::<Vec<_>>(), [e]);
    assert_eq!(bytes, 1234);
    assert_eq!(chain.iter().map(|x| x.action).collect::<Vec<_>>(), [CustodyAction::Uploaded, CustodyAction::Downloaded]);
    assert_eq!(rest.iter().map(|x| x.seq).collect::<Vec<_>>(), [2]);
    let (deleted, twice) = w(&s, move |c| {
        Ok((
            evidence::mark_deleted(c, a, e, "usr_story", "duplicate", Timestamp(250))?,
            evidence::mark_deleted(c, a, e, "usr_story", "again", Timestamp(251))?,
        ))
    })
    .await;
    assert!(deleted && !twice);
    let (tomb, bytes) = r(&s, move |c| Ok((evidence::get(c, a, e)?, evidence::stored_bytes(c, a)?))).await;
    assert_eq!((tomb.blob_key, tomb.delete_reason.as_deref(), bytes), (None, Some("duplicate"), 0));

    // Events: per incident, per organisation, for the live hub; in the
    // write that appends one, reading them finds it.
    let (seen_in_write, last_in_write) = w(&s, move |c| {
        event::append(c, a, Some(p), "comment.added", Some("usr_story"), &serde_json::json!({}), Timestamp(260))?;
        Ok((event::for_incident(c, a, p, 0, 10)?.len(), event::org_last_id(c, a)?))
    })
    .await;
    assert_eq!(seen_in_write, 2, "created, then the comment, read in the write that appended it");
    let (for_p, for_a, all, last, last_a, last_g, after_last) = r(&s, move |c| {
        let last = event::last_id(c)?;
        Ok((
            event::for_incident(c, a, p, 0, 10)?,
            event::org_after(c, a, 0, 100)?,
            event::all_after(c, 0, 100)?,
            last,
            event::org_last_id(c, a)?,
            event::org_last_id(c, g)?,
            event::all_after(c, last, 100)?,
        ))
    })
    .await;
    assert_eq!(ids(&for_p, |x| x.kind.clone()), ["incident.created", "comment.added"]);
    assert_eq!(for_a.len(), 3);
    assert!(for_a.iter().all(|x| x.event.org == a && x.incident_tlp == Some(Tlp::Amber)));
    assert_eq!(all.len(), 4, "every organisation's");
    assert_eq!(last_a, last_in_write);
    assert!(last_g < last && last_a == last);
    assert!(after_last.is_empty());

    // Stream tickets: taken once, before they expire.
    let holder = event::TicketHolder::Session(s3);
    let (taken, again, expired) = w(&s, move |c| {
        event::insert_ticket(c, "ticket-1", a, &holder, Timestamp(300), Timestamp(270))?;
        event::insert_ticket(c, "ticket-2", a, &event::TicketHolder::ApiKey(k), Timestamp(280), Timestamp(270))?;
        Ok((
            event::take_ticket(c, "ticket-1", Timestamp(271))?,
            event::take_ticket(c, "ticket-1", Timestamp(272))?,
            event::take_ticket(c, "ticket-2", Timestamp(290))?,
        ))
    })
    .await;
    assert_eq!(taken, Some((a, event::TicketHolder::Session(s3))));
    assert!(again.is_none() && expired.is_none());

    // The audit log: one chain per tenant, verified; in the write that
    // appends an entry, the list finds it.
    let (seq, listed) = w(&s, move |c| {
        let seq = audit::append(c, entry(a, "story.checked", 310))?;
        Ok((seq, audit::list(c, &a.to_string(), &audit::Filter::default(), None, 1)?))
    })
    .await;
    assert_eq!(seq, 3, "two incidents made, then this");
    assert_eq!(ids(&listed, |x| x.action.clone()), ["story.checked"]);
    let (older, filtered, check, check_g, tenants) = r(&s, move |c| {
        Ok((
            audit::list(c, &a.to_string(), &audit::Filter::default(), Some(3), 10)?,
            audit::list(c, &a.to_string(), &audit::Filter { action: Some("incident.create".into()), ..Default::default() }, None, 10)?,
            audit::verify(c, &a.to_string())?,
            audit::verify(c, &g.to_string())?,
            audit::tenants(c)?,
        ))
    })
    .await;
    assert_eq!(older.iter().map(|x| x.seq).collect::<Vec<_>>(), [2, 1]);
    assert_eq!(filtered.len(), 2);
    assert!(check.ok && check_g.ok, "{check:?} {check_g:?}");
    assert_eq!((check.entries, check_g.entries), (3, 1));
    let mut want = vec![a.to_string(), g.to_string()];
    want.sort();
    assert_eq!(tenants, want);

    // The chain as leaves: read in order from a sequence number; the tree's
    // stored hashes and signed checkpoints kept per tenant.
    let (from_two, head, heads) =
        r(&s, move |c| Ok((audit::entries_from(c, &a.to_string(), 2, 10)?, audit::head(c, &a.to_string())?, audit::heads(c)?))).await;
    assert_eq!(from_two.iter().map(|x| x.seq).collect::<Vec<_>>(), [2, 3]);
    assert!(from_two.iter().all(|x| x.hashes_right() && !x.leaf().is_empty()));
    assert_eq!(head.map(|h| h.0), Some(3));
    let seqs: Vec<(String, i64, i64)> = heads.iter().map(|h| (h.tenant.clone(), h.seq, h.signed_size)).collect();
    assert!(seqs.contains(&(a.to_string(), 3, 0)) && seqs.contains(&(g.to_string(), 1, 0)), "{heads:?}");
    let k = audit::CheckpointRow {
        tenant: a.to_string(),
        size: 2,
        root: "ab".repeat(32),
        note: "note".into(),
        key_id: "ak_1".into(),
        at: Timestamp(311),
    };
    let k2 = audit::CheckpointRow { size: 3, at: Timestamp(312), ..k.clone() };
    w(&s, move |c| {
        audit::put_tree_hashes(c, &a.to_string(), 0, &["00".repeat(32), "11".repeat(32), "22".repeat(32)])?;
        audit::put_checkpoint(c, &k)?;
        audit::put_checkpoint(c, &k2)
    })
    .await;
    let (hashes, missing, latest, after_two, theirs, signed) = r(&s, move |c| {
        Ok((
            audit::tree_hashes(c, &a.to_string(), &[2, 0])?,
            audit::tree_hashes(c, &g.to_string(), &[0]),
            audit::latest_checkpoint(c, &a.to_string())?,
            audit::checkpoints(c, &a.to_string(), 2, 10)?,
            audit::latest_checkpoint(c, &g.to_string())?,
            audit::heads(c)?,
        ))
    })
    .await;
    assert_eq!(hashes, ["22".repeat(32), "00".repeat(32)]);
    assert!(matches!(missing, Err(StoreError::NotFound)), "another tenant's tree is not this one's");
    assert_eq!((latest.map(|k| k.size), after_two.len(), theirs), (Some(3), 1, None));
    let signed: Vec<_> = signed.iter().filter(|h| h.signed_size > 0).map(|h| (h.tenant.clone(), h.signed_size, h.signed_at)).collect();
    assert_eq!(signed, [(a.to_string(), 3, Some(Timestamp(312)))], "the latest checkpoint beside the head");

    // A bulk load: numbered after the last incident, indexed, analysed.
    let seeded = bulk::SeedIncident {
        row: new_incident(a, al, "Seeded credential stuffing", &["seed"], 400),
        comments: Vec::new(),
        iocs: vec![(IocType::Domain, "evil.example".into()), (IocType::Ipv4, "198.51.100.7".into())],
    };
    let seeded_id = seeded.row.id;
    w(&s, move |c| {
        let mut items = [seeded];
        bulk::seed_incidents(c, a, "usr_story", &mut items)?;
        bulk::finish(c)
    })
    .await;
    s.analyze().await.expect("analyze");
    let (numbered, stuffing, shared) = r(&s, move |c| {
        Ok((
            incident::get(c, a, incident::IncidentRef::Id(seeded_id))?.number,
            search::run(c, a, &spec(&["stuffing"]), 0, 10)?.total,
            ioc::sightings(c, a, x)?.len(),
        ))
    })
    .await;
    assert_eq!((numbered, stuffing, shared), (3, 1, 2), "the seeded incident found its indicator");

    // Deleting: the incident and its document go, its tags with it.
    w(&s, move |c| {
        incident::soft_delete(c, a, rw, Timestamp(500))?;
        search::remove_incident(c, a, rw)
    })
    .await;
    let (gone, ransomware, tagged) = r(&s, move |c| {
        Ok((
            incident::get(c, a, incident::IncidentRef::Id(rw)),
            search::run(c, a, &spec(&["ransomware"]), 0, 10)?.total,
            incident::list(
                c,
                a,
                &incident::Filter { tag: Some("ransomware".into()), ..Default::default() },
                incident::Sort::CreatedDesc,
                None,
                10,
            )?,
        ))
    })
    .await;
    assert!(matches!(gone, Err(StoreError::NotFound)));
    assert_eq!(ransomware, 0);
    assert!(tagged.is_empty());
    let twice = s.write(move |c| incident::soft_delete(c, a, rw, Timestamp(501))).await;
    assert!(matches!(twice, Err(StoreError::NotFound)));

    // The tallies follow every write (created, edited, closed, re-filed,
    // seeded in bulk, deleted): what they count is what a list finds.
    let mut brief = new_incident(a, al, "Short-lived", &[], 3 * 86_400_000);
    let gone = new_incident(a, al, "Filed by mistake", &[], 3 * 86_400_000 + 1);
    let gone_id = gone.id;
    w(&s, move |c| {
        brief = create_incident(c, brief)?;
        create_incident(c, gone)?;
        let mut closed = brief.clone();
        (closed.status, closed.category, closed.tlp) = (Status::Closed, Category::Malware, Tlp::Green);
        (closed.closed_at, closed.version) = (Some(Timestamp(5 * 86_400_000)), brief.version + 1);
        assert!(incident::update(c, &closed, brief.version, false)?);
        incident::soft_delete(c, a, gone_id, Timestamp(5 * 86_400_000))
    })
    .await;
    let (statuses, days, green, phishing_days, listed) = r(&s, move |c| {
        let green = ironcase_domain::Sight { tlp_max: Some(Tlp::Green), categories: None };
        let phishing = ironcase_domain::Sight { tlp_max: None, categories: Some(ironcase_domain::Categories::of(&[Category::Phishing])) };
        Ok((
            incident::counts(c, a, ironcase_domain::Sight::ALL, incident::CountBy::Status)?,
            incident::per_day(c, a, ironcase_domain::Sight::ALL, Timestamp(86_400_000))?,
            incident::counts(c, a, green, incident::CountBy::Severity)?,
            incident::per_day(c, a, phishing, Timestamp(0))?,
            incident::list(c, a, &incident::Filter::default(), incident::Sort::CreatedAsc, None, 100)?,
        ))
    })
    .await;
    let mut expected: std::collections::BTreeMap<String, i64> = Default::default();
    for i in &listed {
        *expected.entry(i.status.as_str().to_owned()).or_default() += 1;
    }
    assert_eq!(statuses, expected.into_iter().collect::<Vec<_>>());
    assert!(statuses.contains(&("closed".to_owned(), 1)));
    assert_eq!(days, [(3, 1, 0), (5, 0, 1)], "the deleted one left day 3; the closed one counts on day 5");
    assert_eq!(green, [("high".to_owned(), 1)], "only the re-filed one is green");
    // The queue's facets: from the tallies, and (with a tag) from the
    // incidents; each leaves out its own column's condition.
    let (plain, tagged) = r(&s, move |c| {
        let open = incident::Filter { status: Some(Status::Open), ..Default::default() };
        let tag = incident::Filter { tag: Some("seed".into()), status: Some(Status::Open), ..Default::default() };
        Ok((incident::facets(c, a, &open)?, incident::facets(c, a, &tag)?))
    })
    .await;
    assert!(plain.contains(&(incident::CountBy::Status, "closed".to_owned(), 1)), "its own column unfiltered: {plain:?}");
    assert!(!plain.iter().any(|(by, v, _)| *by == incident::CountBy::Category && v == "malware"), "the closed one is not open: {plain:?}");
    assert_eq!(tagged.iter().filter(|(by, _, _)| *by == incident::CountBy::Status).map(|(_, _, n)| n).sum::<i64>(), 1, "{tagged:?}");
    let phishing_opened: i64 = phishing_days.iter().map(|d| d.1).sum();
    assert_eq!(phishing_opened, listed.iter().filter(|i| i.category == Category::Phishing).count() as i64);

    // Webhooks: an endpoint starts after the newest event; its messages are
    // made by cursor, leased one at a time per endpoint, and their attempts
    // recorded; a failed one is replayed.
    let hook = webhook::WebhookRow {
        org: a,
        id: ironcase_domain::WebhookId::new(),
        url: "https://hooks.example/ironcase".into(),
        description: "SOAR".into(),
        event_types: vec!["incident.created".into()],
        enabled: true,
        sealed_secret: vec![1, 2, 3],
        sealed_previous: None,
        previous_until: None,
        event_cursor: 0,
        failing_since: None,
        disabled_reason: None,
        created_at: Timestamp(600),
        updated_at: Timestamp(600),
        kind: "webhook".into(),
        config: "{}".into(),
        sealed_url: None,
    };
    let hook_id = hook.id;
    let message = |n: i64| webhook::MessageRow {
        org: a,
        id: ironcase_domain::MessageId::new(),
        webhook_id: hook_id,
        event_id: Some(n),
        kind: "incident.created".into(),
        payload: format!("{{\"n\":{n}}}"),
        status: "pending".into(),
        attempts: 0,
        next_at: Timestamp(600 + n),
        created_at: Timestamp(600 + n),
        finished_at: None,
    };
    let (first, second) = (message(1), message(2));
    let (first_id, second_id) = (first.id, second.id);
    let (newest, cursor, due_one) = w(&s, move |c| {
        let mut hook = hook;
        hook.event_cursor = webhook::last_event(c, a)?;
        webhook::insert(c, &hook)?;
        hook.description = "SOAR, tier 1".into();
        webhook::update(c, &hook)?;
        webhook::advance(c, a, hook_id, hook.event_cursor + 5)?;
        webhook::insert_message(c, &first)?;
        webhook::insert_message(c, &second)?;
        let claimed = webhook::claim(c, Timestamp(700), Timestamp(800), 10)?;
        // The second is given back (its run stopped before it): it still
        // waits for the first, which is leased.
        webhook::release(c, a, second_id)?;
        Ok((
            hook.event_cursor,
            webhook::get(c, a, hook_id)?.event_cursor,
            claimed.iter().map(|run| run.iter().map(|d| d.message.id).collect::<Vec<_>>()).collect::<Vec<_>>(),
        ))
    })
    .await;
    assert!(newest > 0 && cursor == newest + 5);
    assert_eq!(due_one, [vec![first_id, second_id]], "one run per endpoint, in order");
    let (leased, enabled) = r(&s, move |c| Ok((webhook::any_due(c, Timestamp(750))?, webhook::enabled(c)?.len()))).await;
    assert!(!leased, "the second waits for the first, which is leased");
    assert_eq!(enabled, 1);
    let attempt = webhook::AttemptRow {
        org: a,
        id: 0,
        webhook_id: hook_id,
        message_id: first_id,
        at: Timestamp(701),
        status_code: Some(500),
        latency_ms: 3,
        success: false,
        error: None,
        response: "busy".into(),
    };
    let replayed = w(&s, move |c| {
        webhook::record(c, &attempt, "failed", Timestamp(701))?;
        webhook::set_failing(c, a, hook_id, Some(Timestamp(701)))?;
        webhook::replay(c, a, hook_id, None, Timestamp(0), Timestamp(702))
    })
    .await;
    assert_eq!(replayed, 1);
    let (tried, failed, pending, listed, theirs) = r(&s, move |c| {
        Ok((
            webhook::attempts(c, a, hook_id, Some(false), None, 10)?,
            webhook::messages(c, a, hook_id, "failed", None, 10)?,
            webhook::messages(c, a, hook_id, "pending", None, 10)?,
            webhook::list(c, a, &["webhook"], None, 10)?,
            webhook::list(c, g, &["webhook"], None, 10)?,
        ))
    })
    .await;
    assert_eq!((tried.len(), tried[0].response.as_str(), tried[0].id), (1, "busy", 1));
    assert!(failed.is_empty() && pending.len() == 2, "replayed");
    assert_eq!((listed.len(), listed[0].description.as_str(), listed[0].failing_since), (1, "SOAR, tier 1", Some(Timestamp(701))));
    assert!(theirs.is_empty(), "another tenant's endpoints are not listed");
    let other_kinds = r(&s, move |c| webhook::list(c, a, &["email", "analyzer"], None, 10)).await;
    assert!(other_kinds.is_empty(), "a webhook is not a channel or an analyzer");
    w(&s, move |c| {
        webhook::disable(c, a, hook_id, "the receiver answered 410 Gone", Timestamp(703))?;
        assert!(webhook::enabled(c)?.is_empty());
        webhook::delete(c, a, hook_id)
    })
    .await;
    let gone = r(&s, move |c| Ok(webhook::get(c, a, hook_id))).await;
    assert!(matches!(gone, Err(StoreError::NotFound)));

    // Alerts: found again by source reference, grouped by dedup key within
    // the window, listed with filters, triaged.
    let new_alert = |source_ref: &str, at: i64| alert::AlertRow {
        org: a,
        id: ironcase_domain::AlertId::new(),
        source: "splunk".into(),
        source_ref: source_ref.into(),
        kind: "suspicious_login".into(),
        title: format!("Impossible travel {source_ref}"),
        description: String::new(),
        severity: Severity::High,
        tlp: Tlp::Amber,
        observables: serde_json::json!([{ "type": "ipv4", "value": "198.51.100.23" }]),
        occurred_at: Timestamp(at),
        raw: None,
        dedup_key: Some("j.doe".into()),
        status: ironcase_domain::AlertStatus::New,
        count: 1,
        first_seen: Timestamp(at),
        last_seen: Timestamp(at),
        incident_id: None,
        dismiss_reason: None,
        snoozed_until: None,
        created_at: Timestamp(at),
        updated_at: Timestamp(at),
    };
    let (one, two) = (new_alert("sp-1", 900), new_alert("sp-2", 901));
    let (one_id, two_id) = (one.id, two.id);
    let (again, group, theirs) = w(&s, move |c| {
        alert::insert(c, &one)?;
        alert::insert(c, &two)?;
        alert::bump(c, a, one_id, Timestamp(950))?;
        let mut dismissed = alert::get(c, a, two_id)?;
        (dismissed.status, dismissed.dismiss_reason) = (ironcase_domain::AlertStatus::Dismissed, Some("noise".into()));
        alert::set_triage(c, &dismissed)?;
        Ok((
            alert::by_ref(c, a, "splunk", "sp-1")?,
            alert::group_for(c, a, "j.doe", Timestamp(940))?,
            alert::by_ref(c, g, "splunk", "sp-1")?,
        ))
    })
    .await;
    assert_eq!(again.map(|x| x.id), Some(one_id));
    assert_eq!(group.map(|x| (x.id, x.count, x.last_seen)), Some((one_id, 2, Timestamp(950))), "the open one, not the dismissed one");
    assert!(theirs.is_none());
    let (all, dismissed, found, amber_only) = r(&s, move |c| {
        let f = |status, text: Option<&str>, tlp_max| alert::Filter {
            status,
            text: text.map(str::to_owned),
            tlp_max,
            now: Timestamp(1000),
            ..Default::default()
        };
        Ok((
            alert::list(c, a, &f(None, None, None), None, 10)?,
            alert::list(c, a, &f(Some(ironcase_domain::AlertStatus::Dismissed), None, None), None, 10)?,
            alert::list(c, a, &f(None, Some("SP-1"), None), None, 10)?,
            alert::list(c, a, &f(None, None, Some(Tlp::Green)), None, 10)?,
        ))
    })
    .await;
    assert_eq!(ids(&all, |x| x.source_ref.clone()), ["sp-2", "sp-1"], "newest first");
    assert_eq!(ids(&dismissed, |x| x.source_ref.clone()), ["sp-2"]);
    assert_eq!(ids(&found, |x| x.source_ref.clone()), ["sp-1"], "case-insensitive words of the title");
    assert!(amber_only.is_empty(), "above the ceiling");

    // Notification preferences: none until a member sets them; one row each.
    let pref = notification::PrefRow {
        org: a,
        account: bo,
        email: true,
        event_types: vec!["incident.created".into()],
        only_assigned: true,
        updated_at: Timestamp(800),
    };
    let (before, set, all, theirs) = {
        let before = r(&s, move |c| notification::get(c, a, bo)).await;
        let p2 = pref.clone();
        w(&s, move |c| notification::put(c, &p2)).await;
        let p3 = notification::PrefRow { only_assigned: false, ..pref.clone() };
        w(&s, move |c| notification::put(c, &p3)).await;
        r(&s, move |c| Ok((before, notification::get(c, a, bo)?, notification::of_org(c, a)?, notification::of_org(c, g)?))).await
    };
    assert!(before.is_none());
    assert_eq!(set.map(|p| (p.only_assigned, p.event_types)), Some((false, vec!["incident.created".to_owned()])));
    assert!(all.len() == 1 && theirs.is_empty(), "{all:?}");

    // Analyzers' reports: the latest of each analyzer on an indicator.
    let analyzer = ironcase_domain::WebhookId::new();
    let report = |verdict: &str, at: i64| report::ReportRow {
        org: a,
        ioc: x,
        analyzer,
        analyzer_name: "sandbox".into(),
        verdict: verdict.into(),
        summary: "seen in a campaign".into(),
        link: None,
        raw: "{}".into(),
        at: Timestamp(at),
    };
    let (r1, r2) = (report("unknown", 801), report("malicious", 802));
    w(&s, move |c| {
        report::put(c, &r1)?;
        report::put(c, &r2)
    })
    .await;
    let (mine, theirs, found) = r(&s, move |c| Ok((report::of_ioc(c, a, x)?, report::of_ioc(c, g, x)?, ioc::get(c, a, x)?))).await;
    assert_eq!(mine.iter().map(|r| r.verdict.as_str()).collect::<Vec<_>>(), ["malicious"]);
    assert!(theirs.is_empty());
    assert_eq!(found.value, "evil.example");
    let missing = r(&s, move |c| Ok(ioc::get(c, g, x))).await;
    assert!(matches!(missing, Err(StoreError::NotFound)));

    // Personal data breaches: flagged, listed, found by the deadline job
    // while not notified, each warning recorded once.
    let flagged = breach::BreachRow {
        org: a,
        incident_id: p,
        aware_at: Timestamp(1_000),
        notified_at: None,
        reference: None,
        warned: 0,
        set_by: Some("usr_story".into()),
        updated_at: Timestamp(1_000),
    };
    let f2 = flagged.clone();
    w(&s, move |c| breach::put(c, &f2)).await;
    let (got, open, told, theirs, due) = r(&s, move |c| {
        Ok((
            breach::get(c, a, p)?,
            breach::list(c, a, Some(true), None, 10)?,
            breach::list(c, a, Some(false), None, 10)?,
            breach::list(c, g, None, None, 10)?,
            breach::due(c, Timestamp(2_000), 10)?,
        ))
    })
    .await;
    assert_eq!(got.as_ref(), Some(&flagged));
    assert_eq!((open.len(), told.len(), theirs.len(), due.len()), (1, 0, 0, 1));
    let (first, again) = w(&s, move |c| Ok((breach::mark_warned(c, a, p, 1)?, breach::mark_warned(c, a, p, 1)?))).await;
    assert!(first && !again, "a warning is raised once");
    let notified = breach::BreachRow { notified_at: Some(Timestamp(3_000)), ..flagged };
    w(&s, move |c| breach::put(c, &notified)).await;
    let (due, warned) = r(&s, move |c| Ok((breach::due(c, Timestamp(9_000), 10)?, breach::get(c, a, p)?.map(|b| b.warned)))).await;
    assert!(due.is_empty(), "a notified breach is not warned about");
    assert_eq!(warned, Some(1), "changing the facts keeps the warnings raised");
    assert!(w(&s, move |c| breach::remove(c, a, p)).await);

    // Retention: policies per kind; a closed incident is due from its
    // closing, unless held; removing it takes what is its own. Audit
    // entries go as a prefix, up to a checkpoint, and the rest still links.
    use ironcase_domain::retention::RetentionKind;
    let mut closed = new_incident(a, al, "Closed long ago", &["old"], 500);
    (closed.status, closed.closed_at, closed.resolution) =
        (Status::Closed, Some(Timestamp(510)), Some(ironcase_domain::Resolution::FalsePositive));
    let closed_id = closed.id;
    w(&s, move |c| {
        create_incident(c, closed)?;
        retention::set_policies(c, a, &[(RetentionKind::ClosedIncidents, Some(30)), (RetentionKind::Alerts, Some(5))], Timestamp(520))?;
        retention::set_policies(c, a, &[(RetentionKind::Alerts, None)], Timestamp(521))
    })
    .await;
    let (policies, orgs, due, due_g) = r(&s, move |c| {
        Ok((
            retention::policies(c, a)?,
            retention::organizations(c)?,
            retention::count_due(c, a, RetentionKind::ClosedIncidents, Timestamp(600))?,
            retention::count_due(c, g, RetentionKind::ClosedIncidents, Timestamp(600))?,
        ))
    })
    .await;
    assert_eq!(policies, [(RetentionKind::ClosedIncidents, 30)]);
    assert_eq!((orgs, due, due_g), (vec![a], 2, 0), "this one and the one deleted at 500");
    let hold = retention::HoldRow { org: a, incident_id: closed_id, reason: "matter".into(), set_by: None, set_at: Timestamp(530) };
    let (new, again) = w(&s, move |c| Ok((retention::hold_put(c, &hold)?, retention::hold_put(c, &hold)?))).await;
    assert!(new && !again, "a second hold replaces the first");
    let (held, holds, theirs, due) = r(&s, move |c| {
        Ok((
            retention::held(c, a, closed_id)?,
            retention::holds(c, a, None, 10)?,
            retention::holds(c, g, None, 10)?,
            retention::count_due(c, a, RetentionKind::ClosedIncidents, Timestamp(600))?,
        ))
    })
    .await;
    assert_eq!((held.map(|h| h.reason), holds.len(), theirs.len(), due), (Some("matter".into()), 1, 0, 1));
    let (lifted, removed) = w(&s, move |c| {
        Ok((
            retention::hold_remove(c, a, closed_id)?,
            retention::remove_due(c, a, RetentionKind::ClosedIncidents, Timestamp(600), 10, Timestamp(600))?,
        ))
    })
    .await;
    assert!(lifted);
    assert_eq!(removed.count, 2);
    let gone = r(&s, move |c| Ok(incident::get(c, a, incident::IncidentRef::Id(closed_id)))).await;
    assert!(matches!(gone, Err(StoreError::NotFound)));
    let (mine, other, mine_again) = w(&s, move |c| {
        Ok((
            retention::take_lease(c, "story", "n1", Timestamp(600), Timestamp(700))?,
            retention::take_lease(c, "story", "n2", Timestamp(650), Timestamp(750))?,
            retention::take_lease(c, "story", "n2", Timestamp(701), Timestamp(800))?,
        ))
    })
    .await;
    assert!(mine && !other && mine_again, "a lease passes on only once it has run out");
    let (upto, young, at_most) = r(&s, move |c| {
        let t = a.to_string();
        Ok((
            audit::prunable(c, &t, Timestamp(i64::MAX), 3)?,
            audit::prunable(c, &t, Timestamp(305), 3)?,
            audit::checkpoint_at_most(c, &t, 2)?,
        ))
    })
    .await;
    assert_eq!((upto, young, at_most), (3, 2, Some(2)));
    let pruned = w(&s, move |c| audit::prune(c, &a.to_string(), 2, Timestamp(900))).await;
    let (mark, check) = r(&s, move |c| Ok((audit::pruned(c, &a.to_string())?, audit::verify(c, &a.to_string())?))).await;
    assert_eq!((pruned, mark.map(|m| m.0)), (2, Some(2)));
    assert!(check.ok, "the rest of the chain links to the pruned prefix: {check:?}");

    // Data-subject requests: a subject's data gathered; the archive handed
    // out once; lateness counted.
    let held = r(&s, move |c| privacy::subject_data(c, a, Some(al), Some("nobody@example.org"))).await;
    assert_eq!(held["account"]["id"], al.to_string());
    assert!(held["sessions"]["items"].is_array() && held["incidents_mentioning"]["items"].is_array());
    let q = privacy::RequestRow {
        org: a,
        id: ironcase_domain::PrivacyRequestId::new(),
        kind: "access".into(),
        subject_id: Some(al),
        subject_email: None,
        status: "completed".into(),
        requested_by: None,
        created_at: Timestamp(1_000),
        due_at: Timestamp(2_000),
        completed_at: Some(Timestamp(3_000)),
        archive_sha256: None,
        archive_expires_at: Some(Timestamp(9_000)),
        downloaded_at: None,
    };
    let (q2, qid) = (q.clone(), q.id);
    w(&s, move |c| privacy::insert(c, &q2, Some(b"sealed"))).await;
    let (once, twice) =
        w(&s, move |c| Ok((privacy::take_archive(c, a, qid, Timestamp(5_000))?, privacy::take_archive(c, a, qid, Timestamp(5_001))?)))
            .await;
    assert_eq!((once.as_deref(), twice), (Some(&b"sealed"[..]), None));
    let (got, listed, theirs, late) = r(&s, move |c| {
        Ok((
            privacy::get(c, a, qid)?,
            privacy::list(c, a, None, 10)?,
            privacy::list(c, g, None, 10)?,
            privacy::late(c, a, Timestamp(5_000))?,
        ))
    })
    .await;
    assert_eq!(got.and_then(|x| x.downloaded_at), Some(Timestamp(5_000)));
    assert_eq!((listed.len(), theirs.len(), late), (1, 0, (1, 1, 0)));

    // Compliance figures: the organisation's own, read in one snapshot.
    let (mine, theirs) = r(&s, move |c| {
        Ok((compliance::figures(c, a, Timestamp(10 * 86_400_000))?, compliance::figures(c, g, Timestamp(10 * 86_400_000))?))
    })
    .await;
    assert!(mine.members >= 2 && mine.open >= 1, "{mine:?}");
    assert_eq!(mine.open_past_target, mine.open, "every incident of the story was opened long before day 10 minus its target");
    assert_eq!(mine.retention, [(RetentionKind::ClosedIncidents, 30)]);
    assert!(theirs.retention.is_empty() && theirs.open < mine.open, "{theirs:?}");

    // A member leaves: the membership goes, the account stays.
    w(&s, move |c| org::delete_membership(c, a, bo)).await;
    let (role, account, auth) =
        r(&s, move |c| Ok((org::membership_role(c, a, bo)?, org::get_user(c, bo)?, session::session_auth(c, s1, Some(a))?))).await;
    assert!(role.is_none());
    assert_eq!(account.email, "bob@acme.example");
    assert_eq!(auth.map(|x| x.role), Some(None), "the session no longer has a role");

    // Personal data sealed per subject, then erased: bob, back as a member,
    // acts and is erased; his data's key and address hash go, the chain holds.
    s.seal_personal_with(std::sync::Arc::new(ToyKeys));
    let (at, t) = (a, a.to_string());
    let seq = w(&s, move |c| {
        org::insert_membership(c, at, bo, Role::Analyst, None, Timestamp(950))?;
        let mut e = entry(at, "incident.update", 951);
        (e.actor_id, e.source_ip, e.details) =
            (Some(bo.to_string()), Some("192.0.2.7".into()), serde_json::json!({ "owner_email": "b@x" }));
        audit::append(c, e)
    })
    .await;
    let t2 = t.clone();
    let (held, keys, check) = r(&s, move |c| {
        Ok((
            audit::about(c, &t2, Some(&bo.to_string()), &[], 10)?,
            audit::subject_keys(c, &t2, &[&bo.to_string()])?,
            audit::verify(c, &t2)?,
        ))
    })
    .await;
    let sealed = held.iter().find(|e| e.seq == seq).expect("bob's entry");
    assert_eq!((sealed.v, sealed.source_ip.as_deref(), sealed.personal.len()), (2, None, 2), "{sealed:?}");
    assert!(!sealed.details.contains("b@x") && keys.contains_key(&bo.to_string()) && check.ok, "{sealed:?} {check:?}");
    let (keys_of, erased) = w(&s, move |c| {
        let keys = privacy::api_keys_of(c, at, bo)?;
        let subjects = vec![bo.to_string(), "email:email:b@x".to_owned()];
        Ok((
            keys,
            (
                audit::shred(c, &at.to_string(), &subjects)?,
                privacy::erase_member(c, at, bo, ironcase_domain::PrivacyRequestId::new(), Timestamp(960))?,
            ),
        ))
    })
    .await;
    assert!(keys_of.is_empty());
    assert_eq!((erased.0, erased.1.pseudonymised), (2, true), "two keys; bob belongs to no other organisation: {erased:?}");
    let (keys, check, role, account) = r(&s, move |c| {
        Ok((
            audit::subject_keys(c, &t, &[&bo.to_string()])?,
            audit::verify(c, &t)?,
            org::membership_role(c, at, bo)?,
            org::get_user(c, bo)?,
        ))
    })
    .await;
    assert!(keys.is_empty() && check.ok && role.is_none() && account.email.starts_with("erased-"), "{check:?} {account:?}");

    // Offboarding: globex's keys, then every row of it, in batches; acme's stay.
    let (keys, _blobs) = w(&s, move |c| offboard::destroy_keys(c, g)).await;
    assert!(keys <= 1);
    for table in offboard::TABLES {
        while w(&s, move |c| offboard::remove_rows(c, g, table, 2)).await == 2 {}
    }
    let (left, acme) = r(&s, move |c| {
        let mut left = Vec::new();
        for table in offboard::TABLES {
            if offboard::count(c, g, table)? > 0 {
                left.push(*table);
            }
        }
        Ok((left, offboard::count(c, a, "incident")?))
    })
    .await;
    assert!(left.is_empty(), "globex still has rows in {left:?}");
    assert!(acme > 0);
    s.ping().await.expect("ping");
}

#[tokio::test]
async fn the_story_on_sqlite() {
    let dir = tempfile::tempdir().expect("dir");
    let store = Store::open_sqlite(&dir.path().join("story.db")).await.expect("open");
    story(store.clone()).await;
    store.close().await;
}

#[test]
fn the_story_on_postgres() {
    crate::testing::on_fresh_store("the story on PostgreSQL", |store, _| story(store));
}

/// Every public function of a store module (one that takes a connection,
/// and the few pure ones beside them) is called by the story, by its
/// module's name.
#[test]
fn the_story_calls_every_store_function() {
    let modules = [
        ("alert", include_str!("alert.rs")),
        ("apikey", include_str!("apikey.rs")),
        ("audit", include_str!("audit.rs")),
        ("breach", include_str!("breach.rs")),
        ("bulk", include_str!("bulk.rs")),
        ("compliance", include_str!("compliance.rs")),
        ("event", include_str!("event.rs")),
        ("evidence", include_str!("evidence.rs")),
        ("incident", include_str!("incident.rs")),
        ("invitation", include_str!("invitation.rs")),
        ("ioc", include_str!("ioc.rs")),
        ("mfa", include_str!("mfa.rs")),
        ("notification", include_str!("notification.rs")),
        ("offboard", include_str!("offboard.rs")),
        ("org", include_str!("org.rs")),
        ("privacy", include_str!("privacy.rs")),
        ("report", include_str!("report.rs")),
        ("reset", include_str!("reset.rs")),
        ("retention", include_str!("retention.rs")),
        ("role", include_str!("role.rs")),
        ("search", include_str!("search.rs")),
        ("session", include_str!("session.rs")),
        ("sso", include_str!("sso.rs")),
        ("webhook", include_str!("webhook.rs")),
    ];
    let story = include_str!("story.rs");
    let mut missing = Vec::new();
    let mut count = 0;
    for (module, source) in modules {
        for line in source.lines() {
            let Some(name) = line.strip_prefix("pub fn ").and_then(|l| l.split(['(', '<']).next()) else { continue };
            count += 1;
            let called = [format!("{module}::{name}("), format!("{module}::{name})")];
            if !called.iter().any(|c| story.contains(c.as_str())) {
                missing.push(format!("{module}::{name}"));
            }
        }
    }
    assert!(count > 90, "found only {count} functions: has the layout changed?");
    assert!(missing.is_empty(), "the story does not call: {missing:?}");
}
