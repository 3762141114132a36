"""A local stand-in for Twilio's Voice side: drives the service exactly as Twilio would.

sim = Simulator(WsgiTransport(app), auth_token)            # or HttpTransport()
sim.configure_number("+441632960999", "https://svc/voice/incoming",
                     status_callback="https://svc/voice/status")
call = sim.call("+441632960999", "+441632960001", Script().press("1001#").press("246810#"))
sim.run()
print(call.transcript())
"""

from .core import Conference, Faults, Leg, LogEntry, Simulator
from .script import Callee, Script, Step
from .transport import HttpTransport, Transport, TransportError, WsgiTransport, sign
from .twiml import TwimlError, parse_twiml

__all__ = [
    "Callee",
    "Conference",
    "Faults",
    "HttpTransport",
    "Leg",
    "LogEntry",
    "Script",
    "Simulator",
    "Step",
    "Transport",
    "TransportError",
    "TwimlError",
    "WsgiTransport",
    "parse_twiml",
    "sign",
]
