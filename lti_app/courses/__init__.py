"""The teacher's side of a course: the overview (landing page) and one student's page."""
