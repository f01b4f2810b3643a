"""The shared kernel below every app (docs/architecture.md §2): errors, API plumbing, filters, admin bases,
the label kit. It imports no app and not the project, so importing it never loads Celery."""
