"""The API's request and response bodies, as published in its OpenAPI document."""

import datetime

from ninja import Schema


class Problem(Schema):
    detail: str | dict[str, list[str]]


class Counters(Schema):
    contacts_total: int
    contacts_done: int
    calls_total: int
    calls_live: int
    calls_answered: int
    calls_busy: int
    calls_no_answer: int
    calls_failed: int
    calls_machine: int  # answered by a machine: not in calls_answered
    talk_seconds: int


class CampaignIn(Schema):
    """A new campaign; what is left out takes the dashboard form's defaults. `starts_at` and `ends_at`
    without an offset are wall-clock times in the campaign's `time_zone`."""

    name: str
    account: int
    exophones: list[int]
    connect_mode: str | None = None
    flow_url: str | None = None
    greeting_text: str | None = None
    bot_kind: str | None = None
    bot_settings: dict | None = None
    sample_rate: int | None = None
    recording: str | None = None
    time_limit: int | None = None
    starts_at: datetime.datetime | None = None
    ends_at: datetime.datetime | None = None
    time_zone: str | None = None
    window_start: datetime.time | None = None
    window_end: datetime.time | None = None
    weekdays: list[int] | None = None
    calls_per_minute: int | None = None
    max_concurrent: int | None = None
    max_attempts: int | None = None
    retry_after_minutes: int | None = None
    retry_on: list[str] | None = None
    scrub_max_age_days: int | None = None
    prefer_local_caller_id: bool | None = None


class CampaignOut(Schema):
    id: int
    name: str
    state: str
    last_error: str
    account: int
    exophones: list[int]
    connect_mode: str
    flow_url: str
    greeting_text: str
    bot_kind: str
    bot_settings: dict
    sample_rate: int
    recording: str
    time_limit: int
    starts_at: datetime.datetime | None
    ends_at: datetime.datetime | None
    time_zone: str
    window_start: datetime.time
    window_end: datetime.time
    weekdays: list[int]
    calls_per_minute: int
    max_concurrent: int
    max_attempts: int
    retry_after_minutes: int
    retry_on: list[str]
    counters: Counters
    created_at: datetime.datetime
    updated_at: datetime.datetime

    @staticmethod
    def resolve_account(campaign) -> int:
        return campaign.account_id

    @staticmethod
    def resolve_exophones(campaign) -> list[int]:
        return [exophone.pk for exophone in campaign.exophones.all()]

    @staticmethod
    def resolve_counters(campaign):
        return campaign


class CampaignPage(Schema):
    items: list[CampaignOut]
    next: str | None = None


class RowErrorOut(Schema):
    line: int
    phone: str
    reason: str


class UploadReport(Schema):
    columns: list[str] = []
    variables: list[str] = []
    rows: int = 0
    valid: int = 0
    rejected: int = 0
    imported: int = 0
    reasons: dict[str, int] = {}
    errors: list[RowErrorOut] = []


class UploadOut(Schema):
    """A contact file: `checking`, then `ready` (the report says what an import would do; confirm it),
    `importing`, `imported`; or `refused` (see message). Rejected rows are listed by line."""

    id: int
    campaign: int
    state: str
    progress: int
    message: str
    report: UploadReport
    created_at: datetime.datetime

    @staticmethod
    def resolve_campaign(upload) -> int:
        return upload.campaign_id


class CallOut(Schema):
    id: int
    campaign: int
    contact: int
    attempt: int
    phone: str
    caller_id: str | None
    state: str
    exotel_sid: str
    created_at: datetime.datetime
    dialed_at: datetime.datetime | None
    answered_at: datetime.datetime | None
    ended_at: datetime.datetime | None
    duration: int | None
    disposition: str
    disconnected_by: str
    detailed_status: str
    recording_url: str
    error: str
    transcript: list[list[str]]
    summary: str
    variant: str | None  # the A/B variant's name
    first_audio_ms: int | None  # from the answer to the first audio our bot sent

    @staticmethod
    def resolve_campaign(call) -> int:
        return call.campaign_id

    @staticmethod
    def resolve_variant(call) -> str | None:
        return call.variant.name if call.variant_id else None

    @staticmethod
    def resolve_contact(call) -> int:
        return call.contact_id

    @staticmethod
    def resolve_caller_id(call) -> str | None:
        return call.exophone.number if call.exophone else None


class CallPage(Schema):
    items: list[CallOut]
    next: str | None = None
