"""Exotel's wire formats: the one place that decides what we send and how we read answers.

Rule from the reference's field notes: be exact in what we send (the form Exotel's own sample code
uses), liberal in what we accept. `requests` builds and validates every request once (both clients
send the same description); `replies` reads every documented answer shape and maps errors to types.
Each choice carries a comment naming its source; where the reference is silent the choice is
recorded in the docstring of the module that makes it.
"""

from exotel.wire.replies import (
    ActionAccepted,
    ActiveStreams,
    BridgeInfo,
    CallDetails,
    CallInfo,
    LegInfo,
    Reply,
    error_for,
    parse_action,
    parse_active_streams,
    parse_bridge,
    parse_call,
    parse_call_details,
    parse_leg,
    parse_leg_details,
    parse_retry_after,
)
from exotel.wire.requests import (
    CALLBACK_EVENTS,
    CUSTOM_FIELD_MAX,
    SAMPLE_RATES,
    STREAM_NAME_MAX,
    STREAM_URL_MAX,
    TIME_LIMIT_MAX,
    Account,
    BotCall,
    FlowCall,
    NewLeg,
    Request,
    active_streams,
    build_stream_url,
    call_details,
    connect_to_bot,
    connect_to_flow,
    create_bridge,
    create_leg,
    dialled_number,
    hangup_leg,
    leg_details,
    start_say,
    start_stream,
    stop_say,
)

__all__ = [
    "CALLBACK_EVENTS", "CUSTOM_FIELD_MAX", "SAMPLE_RATES", "STREAM_NAME_MAX", "STREAM_URL_MAX",
    "TIME_LIMIT_MAX", "Account", "ActionAccepted", "ActiveStreams", "BotCall", "BridgeInfo", "CallDetails", "CallInfo",
    "FlowCall", "LegInfo", "NewLeg", "Reply", "Request", "active_streams", "build_stream_url",
    "call_details", "connect_to_bot", "connect_to_flow", "create_bridge", "create_leg", "dialled_number", "error_for",
    "hangup_leg", "leg_details", "parse_action", "parse_active_streams", "parse_bridge", "parse_call",
    "parse_call_details", "parse_leg", "parse_leg_details", "parse_retry_after", "start_say",
    "start_stream", "stop_say",
]
