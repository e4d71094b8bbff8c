"""The script bot: a declarative call script, kept in `Campaign.bot_settings` and checked on save
with `validate_script(spec)` (and `streams.prompts.check_named`: every prompt it names must exist).
Which step runs next is `streams.bots.script_walk`'s, shared with the campaign form's preview.

A script is a JSON object with a list of `steps` run in order; a step may carry an `id` that
branches jump to, and holds exactly one action:

    {"say": "greeting-{language}", "barge_in": true}
        play a prompt (a `streams.models.Prompt` of the workspace: a WAV of any rate, resampled to
        the stream's). `{name}` parts are filled from the contact's variables (plus `name`, `phone`),
        so per-contact variables choose prompts; one a contact's variables name that does not exist
        is skipped and logged.
        With barge-in (the default) the caller speaking (audio above `barge_in.threshold_dbfs` for
        `barge_in.min_ms`) or pressing a key sends `clear` and moves on; a key pressed is kept for
        the next gather. Without it the step waits until Exotel returns the prompt's mark.
    {"pause": 1.5}                       wait, in seconds (at most 60)
    {"gather": {"timeout": 5, "max_digits": 1, "terminator": "#", "into": "choice",
                "branches": {"1": "yes", "2": "no"}, "no_input": "retry", "default": "retry"}}
        collect DTMF until `max_digits` (1-20), the `terminator`, or `timeout` seconds (0.5-60) without
        a key; the digits go to variable `into` (default "digits"); then jump to the branch for the
        digits, else to `no_input` when none came, else to `default`, else go on to the next step
    {"disposition": "interested"}        the call's outcome, written to Call.disposition at the end
    {"set": {"plan": "gold"}}            variables kept on the stream session (strings, numbers, booleans)
    {"opt_out": true}                    put the caller on the workspace's do-not-call list at once, for
                                         every campaign; disposition "opted_out". Its source is "dtmf"
                                         when the caller's keys chose the branch that led here (the
                                         last gather), else "script"
    {"goto": "menu"}                     jump
    {"transfer": {"message": "hold-{language}", "whisper": "Wants the {plan} plan"}}
        hand the caller to a person of the campaign's agent group (`true` for no message or whisper):
        the `message` prompt plays to the caller first, the `whisper` (a text, `{name}` parts filled)
        is said to the agent after the call's summary (name, variables, keys pressed), before the two
        are bridged. A gather's branch leading here lets a key choose it ("press 0 for a person").
        The script ends there (streams/handover.py: the hold, the fallback and the call-back offer),
        unless no transfer is possible (no agent group, Voice AI mode): then it goes on.
    {"hangup": true}                     end the call (running past the last step does too)

A supervisor (`streams.supervision`) may make the script jump to a step with an `id` (the step
running is cut short, a prompt cleared); while they hold the line the script waits before its next
step and goes on from there when they hand back.

Optional top level: `"barge_in": {"threshold_dbfs": -35, "min_ms": 0}`. At most 200 steps, and at
most `script_walk.MAX_STEPS_RUN` steps run per call, so a loop cannot hold a line forever.

Example:
    {"steps": [
        {"say": "greeting-{language}"},
        {"id": "menu", "say": "menu"},
        {"gather": {"timeout": 5, "branches": {"1": "yes", "9": "stop"}, "no_input": "bye"}},
        {"goto": "menu"},
        {"id": "yes", "disposition": "interested"}, {"say": "thanks"}, {"hangup": true},
        {"id": "stop", "opt_out": true}, {"say": "removed"}, {"hangup": true},
        {"id": "bye", "disposition": "no_input"}, {"say": "bye"}]}
"""

from __future__ import annotations

import asyncio
import logging
import string
import time

from django.core.exceptions import ValidationError

from campaigns.models import DoNotCall
from exotel.audio import rms_dbfs
from streams import handover
from streams.bots.script_walk import ACTIONS, Keys, Walk, action_of, fill, gathered, transfer_parts
from streams.runtime import Bot

log = logging.getLogger(__name__)

HANDED_OVER = object()  # a step's result that ends the script: the call is a person's now
WHISPER_MAX = 300
DIGITS = set("0123456789*#")
MAX_STEPS = 200
MARK_GRACE = 5.0  # seconds past a prompt's length to wait for its mark before moving on


# --- validation -----------------------------------------------------------------------------------

def _number(value, name: str, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise ValidationError(f"{name} must be a number from {low:g} to {high:g}.")


def _template_fields(template: str, where: str) -> list[str]:
    try:
        return [field for _, field, _, _ in string.Formatter().parse(template) if field is not None]
    except ValueError as exc:
        raise ValidationError(f"{where}: the prompt name {template!r} is not a valid template ({exc}).") from exc


def _validate_gather(gather, where: str, ids: set[str]) -> None:
    if not isinstance(gather, dict):
        raise ValidationError(f"{where}: gather takes an object.")
    unknown = set(gather) - {"timeout", "max_digits", "terminator", "into", "branches", "no_input", "default"}
    if unknown:
        raise ValidationError(f"{where}: gather does not know {', '.join(sorted(unknown))}.")
    _number(gather.get("timeout", 5), f"{where}: timeout", 0.5, 60)
    max_digits = gather.get("max_digits", 1)
    if isinstance(max_digits, bool) or not isinstance(max_digits, int) or not 1 <= max_digits <= 20:
        raise ValidationError(f"{where}: max_digits must be a whole number from 1 to 20.")
    if gather.get("terminator", "#") not in DIGITS | {""}:
        raise ValidationError(f"{where}: the terminator must be one key (0-9, * or #) or empty.")
    if not isinstance(gather.get("into", "digits"), str) or not gather.get("into", "digits"):
        raise ValidationError(f"{where}: into must name a variable.")
    branches = gather.get("branches", {})
    if not isinstance(branches, dict):
        raise ValidationError(f"{where}: branches map digits to step ids.")
    for digits, target in branches.items():
        if not digits or set(digits) - DIGITS:
            raise ValidationError(f"{where}: branch {digits!r} is not a sequence of keys (0-9, *, #).")
        if target not in ids:
            raise ValidationError(f"{where}: branch {digits!r} goes to {target!r}, which no step has as id.")
    for key in ("no_input", "default"):
        if key in gather and gather[key] not in ids:
            raise ValidationError(f"{where}: {key} goes to {gather[key]!r}, which no step has as id.")


def _validate_transfer(value, where: str) -> None:
    if value is True:
        return
    if not isinstance(value, dict) or set(value) - {"message", "whisper"}:
        raise ValidationError(f'{where}: transfer takes true or an object with "message" and "whisper".')
    message, whisper = value.get("message", ""), value.get("whisper", "")
    if not isinstance(message, str) or not isinstance(whisper, str) or len(whisper) > WHISPER_MAX:
        raise ValidationError(f"{where}: the transfer's message is a prompt name and its whisper a text of at most "
                              f"{WHISPER_MAX} characters.")
    if message:
        _template_fields(message, where)
    _template_fields(whisper, where)


def _validate_step(step, where: str, ids: set[str]) -> None:
    if not isinstance(step, dict):
        raise ValidationError(f"{where} must be an object.")
    actions = set(step) & ACTIONS
    extra = set(step) - ACTIONS - {"id", "barge_in"}
    if len(actions) != 1 or extra:
        raise ValidationError(f"{where} needs exactly one action of {', '.join(sorted(ACTIONS))}"
                              + (f" and does not know {', '.join(sorted(extra))}." if extra else "."))
    (action,) = actions
    value = step[action]
    if "barge_in" in step and (action != "say" or not isinstance(step["barge_in"], bool)):
        raise ValidationError(f"{where}: barge_in (true or false) goes only with say.")
    if action == "say":
        if not isinstance(value, str) or not value.strip():
            raise ValidationError(f"{where}: say takes a prompt name.")
        _template_fields(value, where)
    elif action == "pause":
        _number(value, f"{where}: pause", 0.1, 60)
    elif action == "gather":
        _validate_gather(value, where, ids)
    elif action == "disposition":
        if not isinstance(value, str) or not value.strip() or len(value) > 100:
            raise ValidationError(f"{where}: disposition takes a text of 1 to 100 characters.")
    elif action == "set":
        if not isinstance(value, dict) or not value or any(
            not isinstance(v, (str, int, float, bool)) for v in value.values()
        ):
            raise ValidationError(f"{where}: set takes an object of names to strings, numbers or booleans.")
    elif action == "transfer":
        _validate_transfer(value, where)
    elif action == "goto":
        if value not in ids:
            raise ValidationError(f"{where}: goto {value!r}, which no step has as id.")
    elif value is not True:
        raise ValidationError(f"{where}: {action} takes true.")


def step_label(number: int, step) -> str:
    """How messages name a step: its number, and its id when it has one."""
    step_id = step.get("id") if isinstance(step, dict) else None
    return f'Step {number} ("{step_id}")' if isinstance(step_id, str) and step_id else f"Step {number}"


def validate_script(spec: dict) -> None:
    """Raise ValidationError with a message naming the step and what is wrong; None if the script is fine."""
    if not isinstance(spec, dict) or set(spec) - {"steps", "barge_in"}:
        raise ValidationError('A script is an object with "steps" (and optionally "barge_in").')
    steps = spec.get("steps")
    if not isinstance(steps, list) or not 1 <= len(steps) <= MAX_STEPS:
        raise ValidationError(f"A script needs a list of 1 to {MAX_STEPS} steps.")
    ids: set[str] = set()
    for number, step in enumerate(steps, 1):
        step_id = step.get("id") if isinstance(step, dict) else None
        if step_id is not None:
            if not isinstance(step_id, str) or not step_id or step_id in ids:
                raise ValidationError(f"Step {number}: id must be a unique, non-empty text.")
            ids.add(step_id)
    for number, step in enumerate(steps, 1):
        _validate_step(step, step_label(number, step), ids)
    barge_in = spec.get("barge_in", {})
    if not isinstance(barge_in, dict) or set(barge_in) - {"threshold_dbfs", "min_ms"}:
        raise ValidationError('barge_in is an object with "threshold_dbfs" and "min_ms".')
    _number(barge_in.get("threshold_dbfs", -35), "barge_in.threshold_dbfs", -90, 0)
    _number(barge_in.get("min_ms", 0), "barge_in.min_ms", 0, 2000)


def prompt_templates(spec: dict) -> list[tuple[str, str]]:
    """(prompt name template, where) for each prompt the script names: say steps and transfer messages."""
    found = []
    for number, step in enumerate(spec.get("steps", []), 1):
        if not isinstance(step, dict):
            continue
        if isinstance(step.get("say"), str):
            found.append((step["say"], f"step {number} (say)"))
        transfer = step.get("transfer")
        if isinstance(transfer, dict) and isinstance(transfer.get("message"), str) and transfer["message"]:
            found.append((transfer["message"], f"step {number} (transfer message)"))
    return found


def prompt_names(spec: dict, variables: dict) -> set[str]:
    """The prompts this script may play for a contact with these variables."""
    names = {fill(template, variables) for template, _ in prompt_templates(spec)}
    return {name for name in names if name}


# --- running --------------------------------------------------------------------------------------

class ScriptBot(Bot):
    def __init__(self, stream) -> None:
        super().__init__(stream)
        self.spec = stream.binding.bot_settings
        barge_in = self.spec.get("barge_in", {})
        self.threshold = barge_in.get("threshold_dbfs", -35)
        self.min_ms = barge_in.get("min_ms", 0)
        self.keys: asyncio.Queue[str] = asyncio.Queue()
        # While a prompt plays: a future resolved by its mark ("played") or by barge-in, the mark's name,
        # and whether the caller may barge in. Resolved before the script task wakes, so a key pressed
        # just after the prompt ended is a key for the gather, not a barge-in.
        self._playing: asyncio.Future | None = None
        self._playing_mark = ""
        self._barge_in_allowed = False
        self._loud_since: float | None = None
        self._loud_ms = 0
        self._said = 0
        self._chosen_by_keys = ""  # the keys whose branch the last gather took
        self.walk = Walk(self.spec.get("steps", []))
        self._resumed = asyncio.Event()  # cleared while a supervisor holds the line
        self._resumed.set()
        self._jump_to = ""  # a step a supervisor chose
        self._step: asyncio.Task | None = None

    async def on_start(self) -> None:
        self.stream.spawn(self.run())

    def _may_barge_in(self) -> bool:
        return self._barge_in_allowed and self._playing is not None and not self._playing.done()

    async def on_audio(self, pcm: bytes) -> None:
        if not self._may_barge_in():
            return
        if rms_dbfs(pcm) < self.threshold:
            self._loud_since, self._loud_ms = None, 0
            return
        if self._loud_since is None:
            self._loud_since = time.monotonic()
        self._loud_ms += round(len(pcm) / 2 / self.stream.rate * 1000)
        if self._loud_ms >= self.min_ms:
            await self._barge_in("speech")

    async def on_dtmf(self, digit: str) -> None:
        self.keys.put_nowait(digit)
        if self._may_barge_in():
            self._loud_since = self._loud_since or time.monotonic()
            await self._barge_in("dtmf")

    async def on_mark(self, name: str) -> None:
        if self._playing is not None and name == self._playing_mark and not self._playing.done():
            self._playing.set_result("played")

    async def _barge_in(self, cause: str) -> None:
        self._playing.set_result(cause)
        await self.stream.clear()
        elapsed = round((time.monotonic() - self._loud_since) * 1000)
        self.stream.barge_in_ms.append(elapsed)
        await self.stream.feed.event("barge_in", elapsed)
        self._loud_since, self._loud_ms = None, 0

    async def on_whisper(self, text: str, step: str) -> None:
        if not step:
            return  # a script has no use for a hint; it is on the timeline all the same
        if step not in self.walk.index_of:
            raise ValueError(f"The script has no step {step!r}.")
        self._jump_to = step
        if self._step is not None and not self._step.done():
            if self._playing is not None and not self._playing.done():
                await self.stream.clear()
            self._step.cancel()

    async def on_take_over(self) -> None:
        self._resumed.clear()
        if self._playing is not None and not self._playing.done():
            self._playing.set_result("supervisor")  # the prompt was cleared: go on to wait at the next step

    async def on_hand_back(self) -> None:
        self._resumed.set()

    async def run(self) -> None:
        while True:
            await self._resumed.wait()
            if self._jump_to:
                self.walk.jump(self._jump_to)
                self._jump_to = ""
            step = self.walk.next_step()
            if step is None:
                break
            action = action_of(step)
            target = await self._run_step(action, step)
            if (action == "hangup" and not self._jump_to) or target is HANDED_OVER:
                return
            self.walk.go_on(target)
        if self.walk.ran_out:
            log.warning("stream %s: script ran %s steps; hanging up", self.stream.sid, self.walk.runs)
        await self.stream.hang_up()

    async def _run_step(self, action: str, step: dict) -> str | None:
        """One step, as a task a supervisor's jump may cancel."""
        self._step = asyncio.ensure_future(getattr(self, f"_{action}")(step[action], step))
        try:
            return await self._step
        except asyncio.CancelledError:
            if not self._jump_to or asyncio.current_task().cancelling():
                raise  # the stream is finishing, not a jump
            return None
        finally:
            self._step = None

    async def _say(self, template: str, step: dict) -> None:
        name = fill(template, self.stream.binding.variables)
        if name not in self.stream.prompts:
            log.warning("stream %s: no prompt %r (from %r); skipped", self.stream.sid, name, template)
            return None
        self._said += 1
        self._playing_mark = f"say-{self._said}"
        self._playing = asyncio.get_running_loop().create_future()
        self._barge_in_allowed = step.get("barge_in", True)
        pcm, rate = self.stream.prompts[name]
        try:
            await self.stream.play_prompt(name)
            await self.stream.mark(self._playing_mark)
            # A mark that never comes back (a lost frame) must not hold the call: wait a little past the prompt.
            await asyncio.wait([self._playing], timeout=len(pcm) / 2 / rate + MARK_GRACE)
        finally:
            self._playing = None
        return None

    async def _pause(self, seconds: float, step: dict) -> None:
        await asyncio.sleep(seconds)

    async def _gather(self, gather: dict, step: dict) -> str | None:
        keys = Keys(gather)
        while not keys.done:
            try:
                keys.press(await asyncio.wait_for(self.keys.get(), gather.get("timeout", 5)))
            except TimeoutError:
                break
        target, self._chosen_by_keys = gathered(gather, keys.digits, self.variables)
        return target

    async def _disposition(self, value: str, step: dict) -> None:
        self.disposition = value

    async def _set(self, values: dict, step: dict) -> None:
        self.variables.update(values)

    async def _opt_out(self, value: bool, step: dict) -> None:
        self.disposition = "opted_out"
        if self._chosen_by_keys:
            await self.stream.opt_out(DoNotCall.Source.DTMF, f"pressed {self._chosen_by_keys} in the script")
        else:
            await self.stream.opt_out(DoNotCall.Source.SCRIPT, "the script's opt_out step")

    async def _transfer(self, value, step: dict):
        message, whisper = transfer_parts(value, self.stream.binding.variables, self.variables)
        if message:
            await self._say(message, {"barge_in": False})
        return HANDED_OVER if await handover.transfer(self, whisper=whisper, keys=self.keys) else None

    async def _goto(self, target: str, step: dict) -> str:
        return target

    async def _hangup(self, value: bool, step: dict) -> None:
        await self.stream.hang_up()
