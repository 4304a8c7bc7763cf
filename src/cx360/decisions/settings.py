"""The offer catalogue (`[[offers]]`) and the contact policy (`[contact_policy]`) of cx360.toml.

Each offer says who may get it (a condition over traits, scores, segments and consents), what it is
worth (a margin, or an expression over traits such as `clv_12m * 0.02`), the channels it may go
through, how long to wait after a rejection or a declined application, how often one person may get
it, a priority lever and the dates it runs. The contact policy caps contacts per channel and overall,
keeps quiet hours, and holds people with an open complaint. `[uplift]` says how the marketing
automation records the control groups that let an offer be ranked by its incremental effect, and
`[decisions] objective` what arbitration ranks by.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from cx360.conditions import checked

OfferName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")]
ChannelName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,30}$")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Expression = Annotated[str | None, AfterValidator(checked)]  # fields are checked at decision time


class Cap(_Model):
    """At most `count` contacts in any `days` days."""

    count: int = Field(ge=1)
    days: int = Field(ge=1)

    def __str__(self) -> str:
        return f"{self.count} per {self.days} day{'s' if self.days > 1 else ''}"


class OfferSpec(_Model):
    name: OfferName
    description: str = ""
    where: Expression = Field(None, description="who is eligible; empty: everyone")
    value: float | str = Field(1.0, description="the margin of an acceptance, or an expression over traits")
    channels: list[ChannelName] = Field(min_length=1, description="channels of [contact_policy.channels]")
    cooldown_days: int = Field(180, ge=0, description="days without this offer after the person rejected it")
    declined_cooldown_days: int = Field(
        180, ge=0, description="days without this offer after the organisation declined the person's application"
    )
    cap: Cap | None = Field(None, description="how often one person may get this offer")
    priority: float = Field(1.0, gt=0, description="a business lever that multiplies the expected value")
    starts: dt.date | None = None
    ends: dt.date | None = None

    @model_validator(mode="after")
    def _consistent(self) -> OfferSpec:
        if isinstance(self.value, str):
            checked(self.value)
        if self.starts and self.ends and self.ends < self.starts:
            raise ValueError(f"offer '{self.name}': ends ({self.ends}) is before starts ({self.starts})")
        if len(set(self.channels)) != len(self.channels):
            raise ValueError(f"offer '{self.name}': a channel is listed twice in {self.channels}")
        return self


class ChannelPolicy(_Model):
    """A channel an offer can go through: the marketing consent it needs and how often it may be used."""

    consent: ChannelName | None = Field(
        None, description="the channel of the purpose's consent it needs (default: the channel's own name)"
    )
    cap: Cap | None = None
    hours: tuple[int, int] = Field((0, 24), description="hours of the day the channel can send, [start, end)")

    @model_validator(mode="after")
    def _hours(self) -> ChannelPolicy:
        start, end = self.hours
        if not 0 <= start < end <= 24:
            raise ValueError(f"hours {list(self.hours)}: give [start, end) with 0 <= start < end <= 24")
        return self


class ContactPolicy(_Model):
    purpose: str = Field("marketing", description="the consent purpose every contact is checked for")
    time_zone: str = Field("UTC", description="the time zone of quiet and send hours for a person without their own")
    quiet_hours: tuple[int, int] | None = Field(
        (21, 9), description="local hours [start, end) with no contact, wrapping past midnight; none: no quiet hours"
    )
    person_time_zone: str | None = Field(
        None,
        description="the golden-record attribute that gives each person's zone: an IANA name, or a key of `zones`;"
        " a person without one is on time_zone",
    )
    zones: dict[str, str] = Field({}, description="values of person_time_zone (a city, a region) -> IANA zone")
    channels: dict[ChannelName, ChannelPolicy] = {}
    max_contacts: Cap | None = Field(None, description="global fatigue: contacts over every channel")
    complaint_hold: bool = Field(True, description="no offer while the person has an open complaint")
    exploration: float = Field(
        0.05, ge=0, lt=1, description="share of decisions that pick an eligible action at random"
    )
    seed: int = 0

    @model_validator(mode="after")
    def _consistent(self) -> ContactPolicy:
        try:
            ZoneInfo(self.time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"time_zone {self.time_zone!r} is not a time zone (e.g. 'Europe/Moscow')") from None
        for key, zone in self.zones.items():
            if _zone(zone) is None:
                raise ValueError(f"zones.{key}: {zone!r} is not a time zone (e.g. 'Asia/Novosibirsk')")
        if self.quiet_hours is not None:
            start, end = self.quiet_hours
            if not (0 <= start < 24 and 0 <= end < 24) or start == end:
                raise ValueError(f"quiet_hours {list(self.quiet_hours)}: two different hours from 0 to 23")
        for name, channel in self.channels.items():
            if not self.send_hours(name):
                raise ValueError(
                    f"channels.{name}: its hours {list(channel.hours)} lie inside the quiet hours "
                    f"{list(self.quiet_hours or ())}: it could never send"
                )
            cap, total = channel.cap, self.max_contacts
            if cap and total and total.days >= cap.days and total.count < cap.count:
                raise ValueError(
                    f"caps conflict: channels.{name}.cap allows {cap} but max_contacts allows only {total} over "
                    "every channel; lower the channel's cap or raise max_contacts"
                )
        return self

    def send_hours(self, channel: str) -> list[int]:
        """The local hours at which `channel` may send: its own hours outside the quiet hours."""
        start, end = self.channels[channel].hours
        return [h for h in range(start, end) if not self.quiet(h)]

    def quiet(self, hour: int) -> bool:
        if self.quiet_hours is None:
            return False
        start, end = self.quiet_hours
        return start <= hour < end if start < end else hour >= start or hour < end

    def zone_of(self, value: object) -> str | None:
        """A person's zone from their person_time_zone value: an IANA name or a key of `zones`; None: no zone."""
        if not isinstance(value, str) or not value.strip():
            return None
        value = value.strip()
        return self.zones.get(value) or _zone(value)

    def consent_channel(self, channel: str) -> str:
        return self.channels[channel].consent or channel


class UpliftSettings(_Model):
    """How a control group is recognised in the events: a person held out of an offer's campaign."""

    control_event: str = Field(
        "offer_held_out", description="the event that records a person held out of a campaign (properties.offer)"
    )
    converted: str = Field(
        "converted", description="the control event's property saying whether the person took the offer anyway"
    )
    min_controls: int = Field(
        100, ge=10, description="control events an offer needs, with both outcomes, to be ranked by uplift"
    )


Objective = Literal["incremental", "expected", "acceptance"]


class DecisionSettings(_Model):
    """`[decisions]`: what arbitration ranks each person's open candidates by (cx360.decisions.arbitrate)."""

    objective: Objective = Field(
        "incremental",
        description="incremental: uplift × value where the offer has a control group, else propensity × value;"
        " expected: propensity × value; acceptance: propensity × the offer's priority",
    )


def _zone(name: str) -> str | None:
    """`name` when it is an IANA time zone, else None."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return name


def check_catalogue(offers: list[OfferSpec], policy: ContactPolicy, privacy) -> None:
    """Offers name channels the policy declares, each channel's consent exists for the purpose. ValueError."""
    names = [o.name for o in offers]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"offer names must be unique; repeated: {', '.join(dupes)}")
    for o in offers:
        unknown = [c for c in o.channels if c not in policy.channels]
        if unknown:
            raise ValueError(
                f"offer '{o.name}': unknown channel(s) {unknown}; declare them under [contact_policy.channels] "
                f"(declared: {', '.join(policy.channels) or 'none'})"
            )
    if offers or policy.channels:
        for name in policy.channels:
            try:
                privacy.check_channel(policy.purpose, policy.consent_channel(name))
            except Exception as exc:  # noqa: BLE001 - ConfigError or an unknown purpose, both said as they are
                raise ValueError(f"contact_policy.channels.{name}: {exc}") from None
