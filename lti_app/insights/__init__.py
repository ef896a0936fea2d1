"""Class insights for teachers: the dashboard, flexible groups, the attention list, progress
charts and CSV exports.

Groups, for other pages (all in ``lti_app.insights.groups``; every function takes
``(session, *, context_id, ...)`` and never reads another course):

- ``active_groups(session, *, context_id) -> list[StudentGroup]``: groups to offer in a picker.
- ``group_member_ids(session, *, context_id, group_id) -> set[int]``: a group's current members
  who are still students of the course (``GroupNotFoundError``, a LookupError, for a group of
  another course).
- ``resolve_picked_students(session, *, context_id, group_id, person_ids) -> list[int]``: a
  submitted ``group_id`` expanded to its members plus the ids ticked one by one, every id
  checked with ``roster.services.student_ids_in_course`` (LookupError when one is not).
- ``group_history(session, *, context_id, person_id) -> list[GroupHistoryEntry]``: every group
  the student has been in, with joined/left dates, for the teacher's student page.

Partials: ``insights/_group_picker.html`` (needs ``groups``, optional ``selected_group_id``; a
``<select name="group_id">``) and ``insights/_group_history.html`` (needs ``history``).
Groups are teacher-only: never show them to students or in family reports.
"""
