"""The scheduler: cron and interval schedules that publish timed events, one per slot."""
