"""The LMS gradebook: line items, the score outbox and the worker that sends it."""

# Registers the session listeners that re-score a course after a scale edit and rename the
# columns of renamed competencies: any import of the grades feature must have them.
from lti_app.grades import scale_edits as scale_edits
