-- The CodeRunner schema: users, their projects, and the deployments of each
-- project. Contract: DESIGN.md "Schema". gen_random_uuid() is built into
-- PostgreSQL 13 and later, so no extension is needed.

-- migrate:up

-- The lifecycle of a deployment. The moves allowed between these states are
-- checked by the service (update_deployment_status), in the UPDATE itself.
CREATE TYPE deployment_status AS ENUM (
  'pending', 'building', 'deploying', 'running', 'stopping', 'stopped', 'failed'
);

-- Keeps updated_at current. The triggers below fire only when the row really
-- changes, so an UPDATE that sets the values a row already has leaves it alone.
CREATE FUNCTION set_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  NEW.updated_at := now();
  RETURN NEW;
END;
$$;

CREATE TABLE users (
  id            uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
  email         text        NOT NULL,
  password_hash text        NOT NULL,
  plan_type     text        NOT NULL DEFAULT 'free',
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now(),
  -- The unique constraint's index is also the index on users.email.
  CONSTRAINT users_email_key UNIQUE (email),
  CONSTRAINT users_email_format CHECK (
    length(email) <= 254
    AND email ~ '^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$'
  ),
  CONSTRAINT users_password_hash_not_empty CHECK (password_hash <> ''),
  CONSTRAINT users_plan_type_check CHECK (plan_type IN ('free', 'pro', 'enterprise'))
);

CREATE TABLE projects (
  id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id     uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  name        text        NOT NULL,
  description text,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT projects_name_not_blank CHECK (btrim(name) <> '')
);

CREATE TABLE deployments (
  id                 uuid              PRIMARY KEY DEFAULT gen_random_uuid(),
  project_id         uuid              NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
  app_sandbox_id     text,
  public_url         text,
  db_sandbox_id      text,
  db_connection_info jsonb,
  status             deployment_status NOT NULL DEFAULT 'pending',
  runtime_type       text              NOT NULL,
  created_at         timestamptz       NOT NULL DEFAULT now(),
  updated_at         timestamptz       NOT NULL DEFAULT now(),
  CONSTRAINT deployments_public_url_format CHECK (public_url ~ '^https?://[^\s/?#]+[^\s]*$'),
  CONSTRAINT deployments_runtime_type_not_blank CHECK (btrim(runtime_type) <> '')
);

CREATE INDEX idx_projects_user_id ON projects (user_id);
CREATE INDEX idx_deployments_project_id ON deployments (project_id);
CREATE INDEX idx_deployments_status ON deployments (status);

CREATE TRIGGER users_set_updated_at BEFORE UPDATE ON users
  FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*) EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER projects_set_updated_at BEFORE UPDATE ON projects
  FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*) EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER deployments_set_updated_at BEFORE UPDATE ON deployments
  FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*) EXECUTE FUNCTION set_updated_at();

-- migrate:down

DROP TABLE IF EXISTS deployments;
DROP TABLE IF EXISTS projects;
DROP TABLE IF EXISTS users;
DROP FUNCTION IF EXISTS set_updated_at();
DROP TYPE IF EXISTS deployment_status;
