"""How pages, the admin and every default-formatted time read: ISO order, 24 hours, the zone named.

Django's English formats ("Dec. 2, 2026, 11:38 a.m.") would otherwise win over settings (FORMAT_MODULE_PATH).
Times are shown in the workspace's zone (tenancy.access.WorkspaceMiddleware); T names it (IST, UTC, WIB).
"""

DATE_FORMAT = SHORT_DATE_FORMAT = "Y-m-d"
TIME_FORMAT = "H:i"
DATETIME_FORMAT = SHORT_DATETIME_FORMAT = "Y-m-d H:i T"
