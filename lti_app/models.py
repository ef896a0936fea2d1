"""Every feature's tables, so Alembic and create_all see the whole schema."""

from lti_app.admin import models as admin_models
from lti_app.competencies import models as competencies_models
from lti_app.db import Base
from lti_app.form_once import models as form_once_models
from lti_app.grades import models as grades_models
from lti_app.insights import models as insights_models
from lti_app.learners import models as learners_models
from lti_app.mastery import models as mastery_models
from lti_app.pathways import models as pathways_models
from lti_app.registration import models as registration_models
from lti_app.reports import models as reports_models
from lti_app.roster import models as roster_models
from lti_app.tool import models as tool_models

__all__ = [
    "Base",
    "admin_models",
    "competencies_models",
    "form_once_models",
    "grades_models",
    "insights_models",
    "learners_models",
    "mastery_models",
    "pathways_models",
    "registration_models",
    "reports_models",
    "roster_models",
    "tool_models",
]
