"""Family reports: per student, a page a family can read (printable), its PDF (WeasyPrint),
a class set as a ZIP, in English or Spanish (Flask-Babel catalogs in lti_app/translations),
and the student's own reflection, which the report quotes."""
