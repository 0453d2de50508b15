-- The audit log: staff actions, log-in attempts, permission denials and payment callbacks.
-- Append-only: the database itself refuses UPDATE, DELETE and TRUNCATE. Secrets (passwords,
-- tokens, one-time codes, card data) are redacted before a row is written; log-in identifiers
-- are stored masked.
CREATE TABLE audit_log (
    id          bigserial   PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    kind        text        NOT NULL CHECK (kind IN ('staff_action', 'login', 'permission_denied',
                                                     'payment_callback')),
    actor       text        CHECK (length(actor) <= 64),   -- the user id, NULL when unknown
    actor_role  text        CHECK (length(actor_role) <= 16),
    ip          inet,
    method      text        NOT NULL CHECK (length(method) <= 16),
    path        text        NOT NULL CHECK (length(path) <= 2048),
    route       text        CHECK (length(route) <= 512),  -- the route template; NULL: unmatched
    target      jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(target) = 'object'),
    status      integer     NOT NULL CHECK (status BETWEEN 100 AND 599),
    outcome     text        NOT NULL CHECK (length(outcome) <= 64),
    details     jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(details) = 'object'),
    request_id  text        CHECK (length(request_id) <= 128)
);

-- The ids an entry is about (order, product, payment...), whatever their names, as one array
-- for a GIN index: "every entry about order X" is one index lookup.
CREATE FUNCTION audit_target_ids(target jsonb) RETURNS text[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT coalesce(array_agg(value), '{}') FROM jsonb_each_text(target)
$$;

-- Pages are newest first by id; each filter has an index that keeps that order.
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_kind ON audit_log (kind, id);
CREATE INDEX audit_log_actor ON audit_log (actor, id) WHERE actor IS NOT NULL;
CREATE INDEX audit_log_status ON audit_log (status, id);
CREATE INDEX audit_log_target ON audit_log USING gin (audit_target_ids(target));

CREATE FUNCTION audit_log_is_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
-- Statement-level, so even an UPDATE or DELETE that matches no row is refused.
CREATE TRIGGER audit_log_no_update_or_delete
    BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_is_append_only();
CREATE TRIGGER audit_log_no_truncate
    BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_is_append_only();
