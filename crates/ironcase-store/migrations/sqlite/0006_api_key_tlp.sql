-- An API key may be limited to incidents at or below a TLP (e.g. a sharing
-- integration that may only ever see TLP:GREEN). Null: no ceiling.
alter table api_key add column tlp_max text;
