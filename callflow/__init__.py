"""callflow: Twilio Voice call flows for HMRC's Voluntary Sector Taxes Resolution Service.

The engine package. It knows nothing of Flask: the webhooks package parses requests,
calls into :class:`callflow.service.Callflow` and renders what it returns.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
