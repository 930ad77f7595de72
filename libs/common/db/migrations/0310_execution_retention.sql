-- Retention: the pruner (services/executor/retention.py) takes the oldest finished executions first.
CREATE INDEX IF NOT EXISTS executions_finished ON executions (finished_at) WHERE finished_at IS NOT NULL;
