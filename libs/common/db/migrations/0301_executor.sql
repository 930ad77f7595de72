-- Executor: find a workflow's running executions fast (overlap policy "skip").
CREATE INDEX IF NOT EXISTS executions_running_by_workflow
    ON executions (workflow_id, trigger) WHERE status = 'running';
