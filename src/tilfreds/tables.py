"""Imports every domain's models so ``Base.metadata`` holds the whole schema (Alembic, tests)."""

from tilfreds import keyring
from tilfreds.audit import models as audit_models
from tilfreds.db import Base
from tilfreds.invitations import conversation
from tilfreds.invitations import models as invitation_models
from tilfreds.operators import models as operator_models
from tilfreds.people import models as people_models
from tilfreds.responses import models as response_models
from tilfreds.sms import dev as dev_sms
from tilfreds.surveys import models as survey_models

MODULES = (
    audit_models,
    conversation,
    invitation_models,
    keyring,
    operator_models,
    people_models,
    response_models,
    dev_sms,
    survey_models,
)
metadata = Base.metadata
