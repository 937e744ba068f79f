"""The SMPP 3.4 transport (``TILFREDS_SMS_TRANSPORT=smpp``): transceiver binds to the operator's
SMSC, our own session loop on smpplib's PDU definitions. ``build`` makes it from the settings.
Keeps P3 (the evaluation is sent by SMS) and P13/P14 (the SMSC is declared as a processor).
"""

from __future__ import annotations

import ssl

from tilfreds.config import Settings
from tilfreds.sms.smpp.session import BindConfig
from tilfreds.sms.smpp.transport import Addressing, SmppTransport
from tilfreds.sms.transport import Provider, TransportError

__all__ = ["SmppTransport", "build"]


def build(settings: Settings) -> SmppTransport:
    s = settings
    if not s.smpp_system_id:
        raise TransportError("TILFREDS_SMPP_SYSTEM_ID is required for the SMPP transport")
    if not (s.smpp_provider_name and s.smpp_provider_country):
        raise TransportError(
            "TILFREDS_SMPP_PROVIDER_NAME and TILFREDS_SMPP_PROVIDER_COUNTRY are required: the "
            "SMSC's operator processes the messages and belongs in the register of processors"
        )
    tls = None
    if s.smpp_tls:
        tls = ssl.create_default_context(cafile=s.smpp_tls_ca_file or None)
    config = BindConfig(
        host=s.smpp_host,
        port=s.smpp_port,
        system_id=s.smpp_system_id,
        password=s.smpp_password,
        system_type=s.smpp_system_type,
        window=s.smpp_window,
        rate=s.smpp_rate,
        enquire_link_seconds=s.smpp_enquire_link_seconds,
        response_seconds=s.smpp_response_seconds,
        throttle_seconds=s.smpp_throttle_seconds,
        tls=tls,
    )
    addressing = Addressing(
        source_ton=s.smpp_source_ton,
        source_npi=s.smpp_source_npi,
        submit_id_base=s.smpp_submit_id_base,
        receipt_id_base=s.smpp_receipt_id_base,
    )
    provider = Provider(name=s.smpp_provider_name, country=s.smpp_provider_country.upper())
    return SmppTransport(provider, s.smpp_binds, config, addressing)
