"""Event sources of the hub bridge: the MQTT broker and recorded JSONL streams.

Every source yields raw ``SourceMessage``s (topic, payload bytes, arrival time) that the
pipeline acknowledges after storing them; see ``base`` for the contract, ``mqtt`` and
``replay`` for the two sources.
"""

from connector.plugins.hub.sources.base import (
    DEFAULT_TOPICS,
    MAX_POSITION,
    TOPIC_PREFIX,
    HubTopic,
    LagSnapshot,
    LagTracker,
    PayloadTooLarge,
    RejectHook,
    Source,
    SourceError,
    SourceMessage,
    TopicError,
    parse_topic,
)

__all__ = [
    "DEFAULT_TOPICS",
    "MAX_POSITION",
    "TOPIC_PREFIX",
    "HubTopic",
    "LagSnapshot",
    "LagTracker",
    "PayloadTooLarge",
    "RejectHook",
    "Source",
    "SourceError",
    "SourceMessage",
    "TopicError",
    "parse_topic",
]
