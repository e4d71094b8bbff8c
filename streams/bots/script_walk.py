"""How a script moves from step to step: the decisions the script bot (`streams.bots.script`) makes,
without the call around them, so that the editor's preview (`preview`) walks a script with the very
code a call runs, and the two cannot drift apart.

The bot adds what only a call has: audio and marks, barge-in, timeouts between keys, a supervisor's
jumps, and the transfer itself (`streams.handover`).
"""

from __future__ import annotations

from streams import handover

ACTIONS = {"say", "pause", "gather", "disposition", "set", "opt_out", "goto", "hangup", "transfer"}
MAX_STEPS_RUN = 500


def action_of(step: dict) -> str:
    """A checked step's one action."""
    (action,) = set(step) & ACTIONS
    return action


def fill(template: str, variables: dict) -> str | None:
    """A prompt name or whisper with its `{name}` parts filled; None when a variable is missing."""
    try:
        return template.format_map({k: str(v) for k, v in variables.items()})
    except (KeyError, ValueError, IndexError):
        return None


class Walk:
    """Where a script is: the step to run next, and where each step's outcome leads. At most
    MAX_STEPS_RUN steps run, so a loop cannot hold a line for ever."""

    def __init__(self, steps: list[dict]) -> None:
        self.steps = steps
        self.index_of = {step["id"]: i for i, step in enumerate(steps) if "id" in step}
        self.index = 0
        self.runs = 0

    @property
    def ran_out(self) -> bool:
        """Stopped by MAX_STEPS_RUN with steps still to run."""
        return self.runs >= MAX_STEPS_RUN and self.index < len(self.steps)

    def next_step(self) -> dict | None:
        """The step to run now; None past the last step or after MAX_STEPS_RUN steps."""
        if self.index >= len(self.steps) or self.runs >= MAX_STEPS_RUN:
            return None
        self.runs += 1
        return self.steps[self.index]

    def go_on(self, target: str | None) -> None:
        """After a step: to the step with id `target`, or the next one."""
        self.index = self.index_of[target] if target else self.index + 1

    def jump(self, step_id: str) -> None:
        self.index = self.index_of[step_id]


class Keys:
    """The keys a gather collects: up to its `max_digits`, or until its terminator."""

    def __init__(self, gather: dict) -> None:
        self.max_digits = gather.get("max_digits", 1)
        self.terminator = gather.get("terminator", "#")
        self.digits = ""
        self.done = False

    def press(self, key: str) -> None:
        if self.terminator and key == self.terminator:
            self.done = True
        else:
            self.digits += key
            self.done = len(self.digits) >= self.max_digits


def gathered(gather: dict, digits: str, variables: dict) -> tuple[str | None, str]:
    """What a gather's digits do: they go to its variable; returns the step id to go to (None: the
    next step) and the digits when they chose a branch (else "")."""
    variables[gather.get("into", "digits")] = digits
    branches = gather.get("branches", {})
    if digits in branches:
        return branches[digits], digits
    if not digits and "no_input" in gather:
        return gather["no_input"], ""
    return gather.get("default"), ""


def transfer_parts(value, contact: dict, variables: dict) -> tuple[str, str]:
    """A transfer step's (message prompt name template or "", whisper with its parts filled)."""
    value = value if isinstance(value, dict) else {}
    return value.get("message", ""), fill(value.get("whisper", ""), {**contact, **variables}) or ""


# --- the editor's preview -------------------------------------------------------------------------

class Preview:
    """Walks a checked script as a call to `contact` would, the caller keying `answers`: one text of
    keys per gather reached ("" for none in time). `prompts` are the workspace's prompt names;
    `transfer_refusal` says why no transfer is possible ("" when one is). It stops at a gather with
    no answer left, or where the call would end.

    `run()` returns {"trace": [{"step", "id", "action", "text"}…], "waiting": the gather waited at or
    None, "ended": why the call ends or "", "disposition", "variables"}."""

    def __init__(self, spec: dict, *, contact: dict, answers: list[str], prompts: set[str],
                 transfer_refusal: str) -> None:
        self.walk = Walk(spec["steps"])
        self.contact, self.prompts, self.transfer_refusal = contact, prompts, transfer_refusal
        self.answers = list(answers)  # taken by the gathers in turn
        self.variables: dict = {}
        self.disposition = ""
        self.keyed = ""  # every key the caller pressed (the agent's summary says them)
        self.queued = ""  # keys a gather did not take wait for the next one, as in the bot's queue
        self.chosen_by_keys = ""
        self.waiting: dict | None = None
        self.ended = ""

    def run(self) -> dict:
        trace = []
        while (step := self.walk.next_step()) is not None:
            action = action_of(step)
            number = self.walk.index + 1
            target, text = getattr(self, f"_{action}")(step[action])
            trace.append({"step": number, "id": step.get("id", ""), "action": action, "text": text})
            if self.waiting or self.ended:
                break
            self.walk.go_on(target)
        else:
            self.ended = f"Ran {MAX_STEPS_RUN} steps: hangs up." if self.walk.ran_out else "Past the last step: hangs up."
        waiting = self.waiting and {"step": self.walk.index + 1, "branches": self.waiting.get("branches", {}),
                                    "max_digits": self.waiting.get("max_digits", 1),
                                    "terminator": self.waiting.get("terminator", "#")}
        return {"trace": trace, "waiting": waiting, "ended": self.ended, "disposition": self.disposition,
                "variables": self.variables}

    def _heard(self, template: str) -> str:
        name = fill(template, self.contact)
        if name is None:
            return f"nothing: {template!r} needs a variable this contact lacks (skipped)"
        return f"prompt {name!r}" if name in self.prompts else f"nothing: there is no prompt {name!r} (skipped)"

    def _press(self, keys: Keys, typed: str) -> None:
        while typed and not keys.done:
            keys.press(typed[0])
            typed = typed[1:]
        self.queued = typed

    def _say(self, template: str):
        return None, f"Plays {self._heard(template)}."

    def _pause(self, seconds: float):
        return None, f"Waits {seconds:g} s."

    def _gather(self, gather: dict):
        keys = Keys(gather)
        self._press(keys, self.queued)
        if not keys.done:
            if not self.answers:
                self.waiting = gather
                return None, "Waits for the caller's keys."
            answer = self.answers.pop(0)
            self.keyed += answer
            self._press(keys, answer)  # keys that run out before the gather is done: its timeout
        target, self.chosen_by_keys = gathered(gather, keys.digits, self.variables)
        heard = f"Keys {keys.digits!r}" if keys.digits else "No keys in time"
        return target, f"{heard}: " + (f"goes to {target!r}." if target else "goes on.")

    def _disposition(self, value: str):
        self.disposition = value
        return None, f"Disposition {value!r}."

    def _set(self, values: dict):
        self.variables.update(values)
        return None, "Sets " + ", ".join(f"{k} = {v!r}" for k, v in values.items()) + "."

    def _opt_out(self, value: bool):
        self.disposition = "opted_out"
        how = f"keyed {self.chosen_by_keys}" if self.chosen_by_keys else "by the script"
        return None, f"Puts the number on the do-not-call list ({how})."

    def _goto(self, target: str):
        return target, f"Goes to {target!r}."

    def _transfer(self, value):
        message, whisper = transfer_parts(value, self.contact, self.variables)
        said = f"Plays {self._heard(message)}, then " if message else ""
        if self.transfer_refusal:
            return None, f"{said}no transfer ({self.transfer_refusal}): goes on."
        self.disposition, self.ended = "", "Transferred to a person."
        summary = handover.summarise({**self.contact, **self.variables}, self.keyed, whisper)
        return None, f"{said}hands the caller to a person; the agent hears: {summary!r}"

    def _hangup(self, value: bool):
        self.ended = "Hung up."
        return None, "Hangs up."
