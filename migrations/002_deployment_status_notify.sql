-- Tells listeners when a deployment changes status: after each UPDATE that
-- changes deployments.status, a notification on channel 'deployment_status'
-- with a JSON payload
--   {"id": "<deployment uuid>", "project_id": "<project uuid>",
--    "old_status": "pending", "new_status": "building"}
-- sent when the transaction commits (NOTIFY's rule; nothing for a rollback).
-- `coderunner-db watch` prints them; conn:listen("deployment_status") and
-- conn:wait_notification() receive them. Contract: docs/core.md "Notifications".

-- migrate:up

CREATE FUNCTION notify_deployment_status() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('deployment_status', json_build_object(
    'id', NEW.id,
    'project_id', NEW.project_id,
    'old_status', OLD.status,
    'new_status', NEW.status)::text);
  RETURN NULL;
END;
$$;

CREATE TRIGGER deployments_notify_status AFTER UPDATE OF status ON deployments
  FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
  EXECUTE FUNCTION notify_deployment_status();

-- migrate:down

DROP TRIGGER IF EXISTS deployments_notify_status ON deployments;
DROP FUNCTION IF EXISTS notify_deployment_status();
