"""dunline storage: SQLAlchemy 2 models, repositories, Alembic migrations, the clock."""
from storage.clock import Clock, ManualClock, system_clock
from storage.db import Database
from storage.models import Attempt, AuditEvent, Case, Phone, Recording

__all__ = ["Attempt", "AuditEvent", "Case", "Clock", "Database", "ManualClock", "Phone",
           "Recording", "system_clock"]
