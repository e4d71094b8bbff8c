"""The simulator's faults for one caller ID: only dials from that Exophone meet them."""

from exotel.simulator.calls import Simulator
from exotel.simulator.config import parse_config
from exotel.simulator.log import WireLog


def test_a_fault_for_one_caller_id_spares_the_others():
    config = parse_config({"faults": [{"endpoint": "connect", "caller_id": "+918047400002", "kind": "status",
                                       "status": 503, "times": 2}]})
    sim = Simulator(config, {}, WireLog(None))
    assert sim.take_fault("connect", "+918047400001") is None
    assert sim.take_fault("connect", "+918047400002").status == 503
    assert sim.take_fault("legs", "+918047400002") is None  # another endpoint
    assert sim.take_fault("connect", "+918047400002").status == 503
    assert sim.take_fault("connect", "+918047400002") is None  # `times` used up: the number recovers
