"""The demo LMS: an LTI 1.3 platform for `lti-app demo` and for the test suite."""
