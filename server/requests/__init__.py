"""Request -> job, in one place: what a request body may say, every default and check of its
`sharpening` and sampling fields, and the generation job it becomes (JobPreparer)."""
