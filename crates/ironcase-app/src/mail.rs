//! Outgoing e-mail over SMTP (lettre, on the rustls already in the tree):
//! invitations and password resets. Links carry their token in the URL's
//! fragment (`#token=…`), which browsers never send to a server, so no proxy
//! or access log sees it. Without `--smtp-url` nothing is sent: invitation
//! links go to the admin once, and passwords are reset by admins.

use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::shared::SecretUrl;
use crate::{AppError, Result};

pub struct Mailer {
    transport: Option<AsyncSmtpTransport<Tokio1Executor>>,
    from: Mailbox,
    /// Where people reach Ironcase (links in messages).
    public_url: String,
}

impl Mailer {
    /// `smtp://host[:port]` (plain; `?tls=required` for STARTTLS),
    /// `smtps://host[:port]` (TLS from the start), with `user:password@` when
    /// the server wants them.
    pub fn new(smtp_url: Option<&SecretUrl>, from: &str, public_url: &str) -> Result<Mailer> {
        let from: Mailbox = from.parse().map_err(|_| AppError::BadRequest(format!("mail_from: `{from}` is not an e-mail address")))?;
        let transport = match smtp_url {
            Some(url) => Some(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose())
                    .map_err(|_| AppError::BadRequest("smtp_url is not an smtp:// or smtps:// URL".into()))?
                    .timeout(Some(std::time::Duration::from_secs(10)))
                    .build(),
            ),
            None => None,
        };
        Ok(Mailer { transport, from, public_url: public_url.trim_end_matches('/').to_owned() })
    }

    pub fn enabled(&self) -> bool {
        self.transport.is_some()
    }

    /// A link to the console's `page` carrying `token` in its fragment.
    pub fn link(&self, page: &str, token: &str) -> String {
        format!("{}/{page}#token={token}", self.public_url)
    }

    /// Sends a plain-text message; `Unavailable` when the SMTP server does
    /// not take it (the cause is logged, never the message).
    pub async fn send(&self, to: &str, subject: &str, body: String) -> Result<()> {
        let Some(transport) = &self.transport else { return Err(AppError::Internal("no SMTP server is configured".into())) };
        let to: Mailbox = to.parse().map_err(|_| AppError::Internal("a stored address does not parse".into()))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .header(lettre::message::header::ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(|_| AppError::Internal("could not build an e-mail".into()))?;
        transport.send(message).await.map(|_| ()).map_err(|e| {
            tracing::warn!(error = %e, "the SMTP server did not take a message");
            AppError::Unavailable
        })
    }
}
