import datetime
import ipaddress
import secrets
from decimal import Decimal
from urllib.parse import urlsplit

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models

from tenancy.crypto import EncryptedTextField


def new_token() -> str:
    """An unguessable URL-safe token for webhook and stream URLs."""
    return secrets.token_urlsafe(24)


def validate_e164(value: str) -> None:
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException as exc:
        raise ValidationError(f"{value!r} is not a phone number in E.164 form (+919876543210).") from exc
    if not phonenumbers.is_valid_number(number) or value != phonenumbers.format_number(
        number, phonenumbers.PhoneNumberFormat.E164
    ):
        raise ValidationError(f"{value!r} is not a valid phone number in E.164 form (+919876543210).")


class Workspace(models.Model):
    """The tenant: every other row belongs to exactly one workspace."""

    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=50, unique=True)
    time_zone = models.CharField(max_length=64, default=settings.DEFAULT_TIME_ZONE)
    webhook_token = models.CharField(max_length=64, unique=True, default=new_token, editable=False)
    # Optional HTTP Basic credentials that Exotel's Voicebot applet sends with each stream.
    stream_username = models.CharField(max_length=100, blank=True)
    stream_password = EncryptedTextField(blank=True)
    # The calling policy (campaigns/rules.py) no campaign can widen: a window in the recipient's time,
    # quiet weekdays and holidays (ISO dates), and attempt caps per number across all campaigns.
    calling_start = models.TimeField(default=datetime.time(9, 0))
    calling_end = models.TimeField(default=datetime.time(21, 0))
    quiet_weekdays = models.JSONField(default=list, blank=True)
    holidays = models.JSONField(default=list, blank=True)
    max_attempts_per_day = models.PositiveIntegerField(default=3, validators=[MinValueValidator(1)])
    max_attempts_per_week = models.PositiveIntegerField(default=10, validators=[MinValueValidator(1)])
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=models.Q(calling_start__lt=models.F("calling_end")),
                                   name="calling_window_within_a_day"),
        ]

    def __str__(self):
        return self.name

    def rotate_webhook_token(self) -> None:
        self.webhook_token = new_token()
        self.save(update_fields=["webhook_token"])


class Role(models.TextChoices):
    # Ordered from least to most: each role can do everything the ones before it can.
    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"
    OWNER = "owner"

    @property
    def rank(self) -> int:
        return list(Role).index(self)


class Membership(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.VIEWER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "workspace"], name="one_membership_per_workspace")]

    def __str__(self):
        return f"{self.user} in {self.workspace} ({self.role})"

    def can(self, role: Role) -> bool:
        return Role(self.role).rank >= Role(role).rank


def workspaces_of(user, *, at_least: Role):
    """The ids of the workspaces where `user` holds `at_least` this role, as a subquery to filter by."""
    roles = [role for role in Role if role.rank >= Role(at_least).rank]
    return Membership.objects.filter(user=user, role__in=roles).values("workspace_id")



class Invitation(models.Model):
    """An offer to join a workspace, sent to an address; only that address's account can accept it."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.VIEWER)
    invited_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()

    class Meta:
        ordering = ["email"]
        constraints = [models.UniqueConstraint(fields=["workspace", "email"], name="one_invitation_per_address")]

    def __str__(self):
        return f"{self.email} to {self.workspace} ({self.role})"

class ExotelAccount(models.Model):
    class Region(models.TextChoices):
        MUMBAI = "mumbai", "Mumbai (api.in.exotel.com)"
        SINGAPORE = "singapore", "Singapore (api.exotel.com)"

    class NumberForm(models.TextChoices):
        # Exotel "prefers" E.164, yet some integrations only work with the national form.
        E164 = "e164", "E.164 (+919876543210)"
        NATIONAL = "national", "National with leading 0 (09876543210)"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="exotel_accounts")
    label = models.CharField(max_length=100)
    account_sid = models.CharField(max_length=64)
    api_key = EncryptedTextField()
    api_token = EncryptedTextField()
    region = models.CharField(max_length=10, choices=Region.choices, default=Region.MUMBAI)
    # Blank means the region's; set, it points the account elsewhere (the simulator, a proxy).
    api_base_url = models.URLField(blank=True)
    number_form = models.CharField(max_length=10, choices=NumberForm.choices, default=NumberForm.E164)
    max_allowed_streams = models.PositiveIntegerField(null=True, blank=True)
    active_streams = models.PositiveIntegerField(null=True, blank=True)
    streams_read_at = models.DateTimeField(null=True, blank=True)
    # The last attempt to read them, and its error if it failed (campaigns/accounts.py).
    streams_checked_at = models.DateTimeField(null=True, blank=True)
    streams_error = models.CharField(max_length=300, blank=True)
    # Since when Exotel's active streams and our live calls have disagreed at every reading.
    streams_mismatch_since = models.DateTimeField(null=True, blank=True)
    # Money (campaigns/costs.py): Exotel's Price names no currency, it is in the account's billing one.
    currency = models.CharField(max_length=3, default="INR", validators=[RegexValidator(r"^[A-Z]{3}$", (
        "An ISO 4217 code in capitals, e.g. INR."))], help_text="The account's billing currency: Exotel's prices are in it.")
    rate_per_minute = models.DecimalField(
        max_digits=8, decimal_places=4, null=True, blank=True, validators=[MinValueValidator(Decimal(0))],
        verbose_name="Estimated rate per minute",
        help_text="What a minute on a call costs, to estimate calls Exotel has not priced yet while a campaign has no "
                  "priced calls of its own, and for forecasts.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["label"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "account_sid"], name="one_account_sid_per_workspace")
        ]

    def __str__(self):
        return f"{self.label} ({self.account_sid})"

    @property
    def is_simulator(self) -> bool:
        """Its API is on this machine: the Exotel simulator (the demo's), which rings no real phone.
        Outside the demo and tests, loopback API URLs are refused (tenancy.weburls)."""
        host = urlsplit(self.api_base_url).hostname or ""
        try:
            return host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False


def validate_calling_codes(value) -> None:
    if not isinstance(value, list) or any(
        not isinstance(code, int) or phonenumbers.region_code_for_country_code(code) == "ZZ" for code in value
    ):
        raise ValidationError("Allowed countries are a list of country calling codes, such as [91, 971].")


class Exophone(models.Model):
    """A caller ID of an account; campaigns dial from pools of them (campaigns/pools.py)."""

    class Breaker(models.TextChoices):
        # campaigns/breaker.py: too many failures open it for a cool-down; then one trial call decides.
        CLOSED = "closed", "In use"
        OPEN = "open", "Paused"
        HALF_OPEN = "half_open", "On trial"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="exophones")
    account = models.ForeignKey(ExotelAccount, on_delete=models.CASCADE, related_name="exophones")
    number = models.CharField(max_length=20, validators=[validate_e164])
    label = models.CharField(max_length=100, blank=True)
    # Country calling codes this number may call; empty means its own country's only.
    allowed_countries = models.JSONField(default=list, blank=True, validators=[validate_calling_codes])
    last_used_at = models.DateTimeField(null=True, blank=True)  # rotation: least recently used first
    breaker = models.CharField(max_length=10, choices=Breaker.choices, default=Breaker.CLOSED)
    breaker_reason = models.CharField(max_length=300, blank=True)
    breaker_until = models.DateTimeField(null=True, blank=True)
    # When the breaker last changed: health counts only calls since then (and a trial is the first).
    breaker_changed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["number"]
        constraints = [models.UniqueConstraint(fields=["account", "number"], name="one_exophone_per_account")]

    def __str__(self):
        return f"{self.number} {self.label}".strip()

    @property
    def calling_codes(self) -> set[int]:
        """The country calling codes it may call (E.164 codes are prefix-free: a prefix test is exact)."""
        return set(self.allowed_countries) or {phonenumbers.parse(self.number).country_code}
