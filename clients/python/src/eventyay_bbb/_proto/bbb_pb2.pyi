# Rewritten by clients/python/generate.py to live inside eventyay_bbb._proto.
import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ErrorCode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ERROR_CODE_UNSPECIFIED: _ClassVar[ErrorCode]
    ERROR_CODE_BBB_FAILED: _ClassVar[ErrorCode]
    ERROR_CODE_MISSING_PROFILE: _ClassVar[ErrorCode]
    ERROR_CODE_PERMISSION_DENIED: _ClassVar[ErrorCode]
    ERROR_CODE_INVALID_ARGUMENT: _ClassVar[ErrorCode]
    ERROR_CODE_UNAUTHENTICATED: _ClassVar[ErrorCode]
    ERROR_CODE_UNAVAILABLE: _ClassVar[ErrorCode]
    ERROR_CODE_NOT_FOUND: _ClassVar[ErrorCode]
    ERROR_CODE_FAILED_PRECONDITION: _ClassVar[ErrorCode]

class ServerState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SERVER_STATE_UNSPECIFIED: _ClassVar[ServerState]
    SERVER_STATE_ENABLED: _ClassVar[ServerState]
    SERVER_STATE_CORDONED: _ClassVar[ServerState]
    SERVER_STATE_DISABLED: _ClassVar[ServerState]

class ServerHealth(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SERVER_HEALTH_UNSPECIFIED: _ClassVar[ServerHealth]
    SERVER_HEALTH_HEALTHY: _ClassVar[ServerHealth]
    SERVER_HEALTH_UNHEALTHY: _ClassVar[ServerHealth]
    SERVER_HEALTH_MISCONFIGURED: _ClassVar[ServerHealth]

class ChecksumAlgorithm(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CHECKSUM_ALGORITHM_UNSPECIFIED: _ClassVar[ChecksumAlgorithm]
    CHECKSUM_ALGORITHM_SHA1: _ClassVar[ChecksumAlgorithm]
    CHECKSUM_ALGORITHM_SHA256: _ClassVar[ChecksumAlgorithm]
    CHECKSUM_ALGORITHM_SHA384: _ClassVar[ChecksumAlgorithm]
    CHECKSUM_ALGORITHM_SHA512: _ClassVar[ChecksumAlgorithm]

class MeetingKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MEETING_KIND_UNSPECIFIED: _ClassVar[MeetingKind]
    MEETING_KIND_ROOM: _ClassVar[MeetingKind]
    MEETING_KIND_CALL: _ClassVar[MeetingKind]
ERROR_CODE_UNSPECIFIED: ErrorCode
ERROR_CODE_BBB_FAILED: ErrorCode
ERROR_CODE_MISSING_PROFILE: ErrorCode
ERROR_CODE_PERMISSION_DENIED: ErrorCode
ERROR_CODE_INVALID_ARGUMENT: ErrorCode
ERROR_CODE_UNAUTHENTICATED: ErrorCode
ERROR_CODE_UNAVAILABLE: ErrorCode
ERROR_CODE_NOT_FOUND: ErrorCode
ERROR_CODE_FAILED_PRECONDITION: ErrorCode
SERVER_STATE_UNSPECIFIED: ServerState
SERVER_STATE_ENABLED: ServerState
SERVER_STATE_CORDONED: ServerState
SERVER_STATE_DISABLED: ServerState
SERVER_HEALTH_UNSPECIFIED: ServerHealth
SERVER_HEALTH_HEALTHY: ServerHealth
SERVER_HEALTH_UNHEALTHY: ServerHealth
SERVER_HEALTH_MISCONFIGURED: ServerHealth
CHECKSUM_ALGORITHM_UNSPECIFIED: ChecksumAlgorithm
CHECKSUM_ALGORITHM_SHA1: ChecksumAlgorithm
CHECKSUM_ALGORITHM_SHA256: ChecksumAlgorithm
CHECKSUM_ALGORITHM_SHA384: ChecksumAlgorithm
CHECKSUM_ALGORITHM_SHA512: ChecksumAlgorithm
MEETING_KIND_UNSPECIFIED: MeetingKind
MEETING_KIND_ROOM: MeetingKind
MEETING_KIND_CALL: MeetingKind

class User(_message.Message):
    __slots__ = ("id", "display_name", "avatar_url")
    ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    AVATAR_URL_FIELD_NUMBER: _ClassVar[int]
    id: str
    display_name: str
    avatar_url: str
    def __init__(self, id: _Optional[str] = ..., display_name: _Optional[str] = ..., avatar_url: _Optional[str] = ...) -> None: ...

class RoomSettings(_message.Message):
    __slots__ = ("record", "waiting_room", "mute_on_start", "disable_cam", "disable_chat", "disable_private_chat", "hide_presentation", "auto_microphone", "auto_camera", "voice_bridge", "prefer_server", "presentation_url", "expected_participants")
    RECORD_FIELD_NUMBER: _ClassVar[int]
    WAITING_ROOM_FIELD_NUMBER: _ClassVar[int]
    MUTE_ON_START_FIELD_NUMBER: _ClassVar[int]
    DISABLE_CAM_FIELD_NUMBER: _ClassVar[int]
    DISABLE_CHAT_FIELD_NUMBER: _ClassVar[int]
    DISABLE_PRIVATE_CHAT_FIELD_NUMBER: _ClassVar[int]
    HIDE_PRESENTATION_FIELD_NUMBER: _ClassVar[int]
    AUTO_MICROPHONE_FIELD_NUMBER: _ClassVar[int]
    AUTO_CAMERA_FIELD_NUMBER: _ClassVar[int]
    VOICE_BRIDGE_FIELD_NUMBER: _ClassVar[int]
    PREFER_SERVER_FIELD_NUMBER: _ClassVar[int]
    PRESENTATION_URL_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_PARTICIPANTS_FIELD_NUMBER: _ClassVar[int]
    record: bool
    waiting_room: bool
    mute_on_start: bool
    disable_cam: bool
    disable_chat: bool
    disable_private_chat: bool
    hide_presentation: bool
    auto_microphone: bool
    auto_camera: bool
    voice_bridge: str
    prefer_server: str
    presentation_url: str
    expected_participants: int
    def __init__(self, record: bool = ..., waiting_room: bool = ..., mute_on_start: bool = ..., disable_cam: bool = ..., disable_chat: bool = ..., disable_private_chat: bool = ..., hide_presentation: bool = ..., auto_microphone: bool = ..., auto_camera: bool = ..., voice_bridge: _Optional[str] = ..., prefer_server: _Optional[str] = ..., presentation_url: _Optional[str] = ..., expected_participants: _Optional[int] = ...) -> None: ...

class RoomUrlRequest(_message.Message):
    __slots__ = ("event_id", "organizer_id", "room_id", "room_name", "user", "permissions", "settings", "domain", "base_url")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    ORGANIZER_ID_FIELD_NUMBER: _ClassVar[int]
    ROOM_ID_FIELD_NUMBER: _ClassVar[int]
    ROOM_NAME_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    PERMISSIONS_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    DOMAIN_FIELD_NUMBER: _ClassVar[int]
    BASE_URL_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    organizer_id: str
    room_id: str
    room_name: str
    user: User
    permissions: _containers.RepeatedScalarFieldContainer[str]
    settings: RoomSettings
    domain: str
    base_url: str
    def __init__(self, event_id: _Optional[str] = ..., organizer_id: _Optional[str] = ..., room_id: _Optional[str] = ..., room_name: _Optional[str] = ..., user: _Optional[_Union[User, _Mapping]] = ..., permissions: _Optional[_Iterable[str]] = ..., settings: _Optional[_Union[RoomSettings, _Mapping]] = ..., domain: _Optional[str] = ..., base_url: _Optional[str] = ...) -> None: ...

class RoomUrlResponse(_message.Message):
    __slots__ = ("url", "server_id", "meeting_id", "moderator")
    URL_FIELD_NUMBER: _ClassVar[int]
    SERVER_ID_FIELD_NUMBER: _ClassVar[int]
    MEETING_ID_FIELD_NUMBER: _ClassVar[int]
    MODERATOR_FIELD_NUMBER: _ClassVar[int]
    url: str
    server_id: str
    meeting_id: str
    moderator: bool
    def __init__(self, url: _Optional[str] = ..., server_id: _Optional[str] = ..., meeting_id: _Optional[str] = ..., moderator: bool = ...) -> None: ...

class CallUrlRequest(_message.Message):
    __slots__ = ("event_id", "call_id", "user", "domain", "base_url")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    DOMAIN_FIELD_NUMBER: _ClassVar[int]
    BASE_URL_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    call_id: str
    user: User
    domain: str
    base_url: str
    def __init__(self, event_id: _Optional[str] = ..., call_id: _Optional[str] = ..., user: _Optional[_Union[User, _Mapping]] = ..., domain: _Optional[str] = ..., base_url: _Optional[str] = ...) -> None: ...

class CallUrlResponse(_message.Message):
    __slots__ = ("url", "server_id", "meeting_id")
    URL_FIELD_NUMBER: _ClassVar[int]
    SERVER_ID_FIELD_NUMBER: _ClassVar[int]
    MEETING_ID_FIELD_NUMBER: _ClassVar[int]
    url: str
    server_id: str
    meeting_id: str
    def __init__(self, url: _Optional[str] = ..., server_id: _Optional[str] = ..., meeting_id: _Optional[str] = ...) -> None: ...

class CreateCallRequest(_message.Message):
    __slots__ = ("event_id", "organizer_id", "member_ids", "idempotency_key")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    ORGANIZER_ID_FIELD_NUMBER: _ClassVar[int]
    MEMBER_IDS_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    organizer_id: str
    member_ids: _containers.RepeatedScalarFieldContainer[str]
    idempotency_key: str
    def __init__(self, event_id: _Optional[str] = ..., organizer_id: _Optional[str] = ..., member_ids: _Optional[_Iterable[str]] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class CreateCallResponse(_message.Message):
    __slots__ = ("call_id",)
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    call_id: str
    def __init__(self, call_id: _Optional[str] = ...) -> None: ...

class ForgetUserRequest(_message.Message):
    __slots__ = ("user_id",)
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    def __init__(self, user_id: _Optional[str] = ...) -> None: ...

class ForgetUserResponse(_message.Message):
    __slots__ = ("calls",)
    CALLS_FIELD_NUMBER: _ClassVar[int]
    calls: int
    def __init__(self, calls: _Optional[int] = ...) -> None: ...

class DeleteEventRequest(_message.Message):
    __slots__ = ("event_id", "end_meetings")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    END_MEETINGS_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    end_meetings: bool
    def __init__(self, event_id: _Optional[str] = ..., end_meetings: bool = ...) -> None: ...

class DeleteEventResponse(_message.Message):
    __slots__ = ("meetings_deleted", "meetings_ended", "end_failed_on")
    MEETINGS_DELETED_FIELD_NUMBER: _ClassVar[int]
    MEETINGS_ENDED_FIELD_NUMBER: _ClassVar[int]
    END_FAILED_ON_FIELD_NUMBER: _ClassVar[int]
    meetings_deleted: int
    meetings_ended: int
    end_failed_on: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, meetings_deleted: _Optional[int] = ..., meetings_ended: _Optional[int] = ..., end_failed_on: _Optional[_Iterable[str]] = ...) -> None: ...

class AvailabilityRequest(_message.Message):
    __slots__ = ("event_id", "organizer_id")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    ORGANIZER_ID_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    organizer_id: str
    def __init__(self, event_id: _Optional[str] = ..., organizer_id: _Optional[str] = ...) -> None: ...

class AvailabilityResponse(_message.Message):
    __slots__ = ("rooms", "calls")
    ROOMS_FIELD_NUMBER: _ClassVar[int]
    CALLS_FIELD_NUMBER: _ClassVar[int]
    rooms: bool
    calls: bool
    def __init__(self, rooms: bool = ..., calls: bool = ...) -> None: ...

class PlannedSession(_message.Message):
    __slots__ = ("room_id", "start", "end", "expected_participants")
    ROOM_ID_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_PARTICIPANTS_FIELD_NUMBER: _ClassVar[int]
    room_id: str
    start: _timestamp_pb2.Timestamp
    end: _timestamp_pb2.Timestamp
    expected_participants: int
    def __init__(self, room_id: _Optional[str] = ..., start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expected_participants: _Optional[int] = ...) -> None: ...

class PlanScheduleRequest(_message.Message):
    __slots__ = ("event_id", "organizer_id", "sessions", "slot_minutes", "keep")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    ORGANIZER_ID_FIELD_NUMBER: _ClassVar[int]
    SESSIONS_FIELD_NUMBER: _ClassVar[int]
    SLOT_MINUTES_FIELD_NUMBER: _ClassVar[int]
    KEEP_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    organizer_id: str
    sessions: _containers.RepeatedCompositeFieldContainer[PlannedSession]
    slot_minutes: int
    keep: bool
    def __init__(self, event_id: _Optional[str] = ..., organizer_id: _Optional[str] = ..., sessions: _Optional[_Iterable[_Union[PlannedSession, _Mapping]]] = ..., slot_minutes: _Optional[int] = ..., keep: bool = ...) -> None: ...

class PlannedServerLoad(_message.Message):
    __slots__ = ("server_id", "load", "load_per_weight", "meetings", "participants", "max_meetings", "max_participants")
    SERVER_ID_FIELD_NUMBER: _ClassVar[int]
    LOAD_FIELD_NUMBER: _ClassVar[int]
    LOAD_PER_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    MEETINGS_FIELD_NUMBER: _ClassVar[int]
    PARTICIPANTS_FIELD_NUMBER: _ClassVar[int]
    MAX_MEETINGS_FIELD_NUMBER: _ClassVar[int]
    MAX_PARTICIPANTS_FIELD_NUMBER: _ClassVar[int]
    server_id: str
    load: float
    load_per_weight: float
    meetings: int
    participants: int
    max_meetings: int
    max_participants: int
    def __init__(self, server_id: _Optional[str] = ..., load: _Optional[float] = ..., load_per_weight: _Optional[float] = ..., meetings: _Optional[int] = ..., participants: _Optional[int] = ..., max_meetings: _Optional[int] = ..., max_participants: _Optional[int] = ...) -> None: ...

class UnplacedSession(_message.Message):
    __slots__ = ("room_id", "expected_participants", "reason")
    ROOM_ID_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_PARTICIPANTS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    room_id: str
    expected_participants: int
    reason: str
    def __init__(self, room_id: _Optional[str] = ..., expected_participants: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class PlannedSlot(_message.Message):
    __slots__ = ("start", "servers", "unplaced", "participants_short")
    START_FIELD_NUMBER: _ClassVar[int]
    SERVERS_FIELD_NUMBER: _ClassVar[int]
    UNPLACED_FIELD_NUMBER: _ClassVar[int]
    PARTICIPANTS_SHORT_FIELD_NUMBER: _ClassVar[int]
    start: _timestamp_pb2.Timestamp
    servers: _containers.RepeatedCompositeFieldContainer[PlannedServerLoad]
    unplaced: _containers.RepeatedCompositeFieldContainer[UnplacedSession]
    participants_short: int
    def __init__(self, start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., servers: _Optional[_Iterable[_Union[PlannedServerLoad, _Mapping]]] = ..., unplaced: _Optional[_Iterable[_Union[UnplacedSession, _Mapping]]] = ..., participants_short: _Optional[int] = ...) -> None: ...

class SessionPlacement(_message.Message):
    __slots__ = ("room_id", "server_id", "start")
    ROOM_ID_FIELD_NUMBER: _ClassVar[int]
    SERVER_ID_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    room_id: str
    server_id: str
    start: _timestamp_pb2.Timestamp
    def __init__(self, room_id: _Optional[str] = ..., server_id: _Optional[str] = ..., start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class PlanScheduleResponse(_message.Message):
    __slots__ = ("slots", "placements", "kept")
    SLOTS_FIELD_NUMBER: _ClassVar[int]
    PLACEMENTS_FIELD_NUMBER: _ClassVar[int]
    KEPT_FIELD_NUMBER: _ClassVar[int]
    slots: _containers.RepeatedCompositeFieldContainer[PlannedSlot]
    placements: _containers.RepeatedCompositeFieldContainer[SessionPlacement]
    kept: int
    def __init__(self, slots: _Optional[_Iterable[_Union[PlannedSlot, _Mapping]]] = ..., placements: _Optional[_Iterable[_Union[SessionPlacement, _Mapping]]] = ..., kept: _Optional[int] = ...) -> None: ...

class ListRecordingsRequest(_message.Message):
    __slots__ = ("event_id", "room_id", "permissions")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    ROOM_ID_FIELD_NUMBER: _ClassVar[int]
    PERMISSIONS_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    room_id: str
    permissions: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, event_id: _Optional[str] = ..., room_id: _Optional[str] = ..., permissions: _Optional[_Iterable[str]] = ...) -> None: ...

class Recording(_message.Message):
    __slots__ = ("record_id", "start", "end", "participants", "state", "url", "url_video", "url_screenshare", "url_notes")
    RECORD_ID_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    PARTICIPANTS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    URL_VIDEO_FIELD_NUMBER: _ClassVar[int]
    URL_SCREENSHARE_FIELD_NUMBER: _ClassVar[int]
    URL_NOTES_FIELD_NUMBER: _ClassVar[int]
    record_id: str
    start: _timestamp_pb2.Timestamp
    end: _timestamp_pb2.Timestamp
    participants: int
    state: str
    url: str
    url_video: str
    url_screenshare: str
    url_notes: str
    def __init__(self, record_id: _Optional[str] = ..., start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., participants: _Optional[int] = ..., state: _Optional[str] = ..., url: _Optional[str] = ..., url_video: _Optional[str] = ..., url_screenshare: _Optional[str] = ..., url_notes: _Optional[str] = ...) -> None: ...

class ListRecordingsResponse(_message.Message):
    __slots__ = ("results", "unreachable_servers")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    UNREACHABLE_SERVERS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[Recording]
    unreachable_servers: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, results: _Optional[_Iterable[_Union[Recording, _Mapping]]] = ..., unreachable_servers: _Optional[_Iterable[str]] = ...) -> None: ...

class ServerSpec(_message.Message):
    __slots__ = ("id", "url", "secret", "checksum_algorithm", "state", "rooms_only", "events", "organizers", "weight", "max_meetings", "max_participants")
    ID_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    CHECKSUM_ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ROOMS_ONLY_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    ORGANIZERS_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    MAX_MEETINGS_FIELD_NUMBER: _ClassVar[int]
    MAX_PARTICIPANTS_FIELD_NUMBER: _ClassVar[int]
    id: str
    url: str
    secret: str
    checksum_algorithm: ChecksumAlgorithm
    state: ServerState
    rooms_only: bool
    events: _containers.RepeatedScalarFieldContainer[str]
    organizers: _containers.RepeatedScalarFieldContainer[str]
    weight: float
    max_meetings: int
    max_participants: int
    def __init__(self, id: _Optional[str] = ..., url: _Optional[str] = ..., secret: _Optional[str] = ..., checksum_algorithm: _Optional[_Union[ChecksumAlgorithm, str]] = ..., state: _Optional[_Union[ServerState, str]] = ..., rooms_only: bool = ..., events: _Optional[_Iterable[str]] = ..., organizers: _Optional[_Iterable[str]] = ..., weight: _Optional[float] = ..., max_meetings: _Optional[int] = ..., max_participants: _Optional[int] = ...) -> None: ...

class ServerInfo(_message.Message):
    __slots__ = ("spec", "draining", "health", "load", "meetings", "participants", "from_file", "health_reason")
    SPEC_FIELD_NUMBER: _ClassVar[int]
    DRAINING_FIELD_NUMBER: _ClassVar[int]
    HEALTH_FIELD_NUMBER: _ClassVar[int]
    LOAD_FIELD_NUMBER: _ClassVar[int]
    MEETINGS_FIELD_NUMBER: _ClassVar[int]
    PARTICIPANTS_FIELD_NUMBER: _ClassVar[int]
    FROM_FILE_FIELD_NUMBER: _ClassVar[int]
    HEALTH_REASON_FIELD_NUMBER: _ClassVar[int]
    spec: ServerSpec
    draining: bool
    health: ServerHealth
    load: float
    meetings: int
    participants: int
    from_file: bool
    health_reason: str
    def __init__(self, spec: _Optional[_Union[ServerSpec, _Mapping]] = ..., draining: bool = ..., health: _Optional[_Union[ServerHealth, str]] = ..., load: _Optional[float] = ..., meetings: _Optional[int] = ..., participants: _Optional[int] = ..., from_file: bool = ..., health_reason: _Optional[str] = ...) -> None: ...

class ListServersRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListServersResponse(_message.Message):
    __slots__ = ("servers",)
    SERVERS_FIELD_NUMBER: _ClassVar[int]
    servers: _containers.RepeatedCompositeFieldContainer[ServerInfo]
    def __init__(self, servers: _Optional[_Iterable[_Union[ServerInfo, _Mapping]]] = ...) -> None: ...

class PutServerRequest(_message.Message):
    __slots__ = ("server",)
    SERVER_FIELD_NUMBER: _ClassVar[int]
    server: ServerSpec
    def __init__(self, server: _Optional[_Union[ServerSpec, _Mapping]] = ...) -> None: ...

class PutServerResponse(_message.Message):
    __slots__ = ("server", "created")
    SERVER_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    server: ServerInfo
    created: bool
    def __init__(self, server: _Optional[_Union[ServerInfo, _Mapping]] = ..., created: bool = ...) -> None: ...

class RemoveServerRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class RemoveServerResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SetServerStateRequest(_message.Message):
    __slots__ = ("id", "state")
    ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    id: str
    state: ServerState
    def __init__(self, id: _Optional[str] = ..., state: _Optional[_Union[ServerState, str]] = ...) -> None: ...

class SetServerStateResponse(_message.Message):
    __slots__ = ("server",)
    SERVER_FIELD_NUMBER: _ClassVar[int]
    server: ServerInfo
    def __init__(self, server: _Optional[_Union[ServerInfo, _Mapping]] = ...) -> None: ...

class DrainServerRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class DrainServerResponse(_message.Message):
    __slots__ = ("server",)
    SERVER_FIELD_NUMBER: _ClassVar[int]
    server: ServerInfo
    def __init__(self, server: _Optional[_Union[ServerInfo, _Mapping]] = ...) -> None: ...

class MoveRoomRequest(_message.Message):
    __slots__ = ("event_id", "room_id", "server_id", "force")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    ROOM_ID_FIELD_NUMBER: _ClassVar[int]
    SERVER_ID_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    room_id: str
    server_id: str
    force: bool
    def __init__(self, event_id: _Optional[str] = ..., room_id: _Optional[str] = ..., server_id: _Optional[str] = ..., force: bool = ...) -> None: ...

class MoveRoomResponse(_message.Message):
    __slots__ = ("from_server_id", "to_server_id", "ended_on_old_server")
    FROM_SERVER_ID_FIELD_NUMBER: _ClassVar[int]
    TO_SERVER_ID_FIELD_NUMBER: _ClassVar[int]
    ENDED_ON_OLD_SERVER_FIELD_NUMBER: _ClassVar[int]
    from_server_id: str
    to_server_id: str
    ended_on_old_server: bool
    def __init__(self, from_server_id: _Optional[str] = ..., to_server_id: _Optional[str] = ..., ended_on_old_server: bool = ...) -> None: ...

class ExplainPlacementRequest(_message.Message):
    __slots__ = ("event_id", "organizer_id", "kind", "prefer_server", "expected_participants", "room_id")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    ORGANIZER_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PREFER_SERVER_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_PARTICIPANTS_FIELD_NUMBER: _ClassVar[int]
    ROOM_ID_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    organizer_id: str
    kind: MeetingKind
    prefer_server: str
    expected_participants: int
    room_id: str
    def __init__(self, event_id: _Optional[str] = ..., organizer_id: _Optional[str] = ..., kind: _Optional[_Union[MeetingKind, str]] = ..., prefer_server: _Optional[str] = ..., expected_participants: _Optional[int] = ..., room_id: _Optional[str] = ...) -> None: ...

class PlannedPlacement(_message.Message):
    __slots__ = ("server_id", "start", "end", "expected_participants", "reserving")
    SERVER_ID_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_PARTICIPANTS_FIELD_NUMBER: _ClassVar[int]
    RESERVING_FIELD_NUMBER: _ClassVar[int]
    server_id: str
    start: _timestamp_pb2.Timestamp
    end: _timestamp_pb2.Timestamp
    expected_participants: int
    reserving: bool
    def __init__(self, server_id: _Optional[str] = ..., start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expected_participants: _Optional[int] = ..., reserving: bool = ...) -> None: ...

class PlacementCandidate(_message.Message):
    __slots__ = ("server_id", "eligible", "excluded_because", "tier", "load", "weight", "score", "event_rooms")
    SERVER_ID_FIELD_NUMBER: _ClassVar[int]
    ELIGIBLE_FIELD_NUMBER: _ClassVar[int]
    EXCLUDED_BECAUSE_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    LOAD_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    EVENT_ROOMS_FIELD_NUMBER: _ClassVar[int]
    server_id: str
    eligible: bool
    excluded_because: str
    tier: int
    load: float
    weight: float
    score: float
    event_rooms: int
    def __init__(self, server_id: _Optional[str] = ..., eligible: bool = ..., excluded_because: _Optional[str] = ..., tier: _Optional[int] = ..., load: _Optional[float] = ..., weight: _Optional[float] = ..., score: _Optional[float] = ..., event_rooms: _Optional[int] = ...) -> None: ...

class ExplainPlacementResponse(_message.Message):
    __slots__ = ("chosen_server_id", "candidates", "planned")
    CHOSEN_SERVER_ID_FIELD_NUMBER: _ClassVar[int]
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    PLANNED_FIELD_NUMBER: _ClassVar[int]
    chosen_server_id: str
    candidates: _containers.RepeatedCompositeFieldContainer[PlacementCandidate]
    planned: PlannedPlacement
    def __init__(self, chosen_server_id: _Optional[str] = ..., candidates: _Optional[_Iterable[_Union[PlacementCandidate, _Mapping]]] = ..., planned: _Optional[_Union[PlannedPlacement, _Mapping]] = ...) -> None: ...

class ListAuditLogRequest(_message.Message):
    __slots__ = ("limit",)
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    limit: int
    def __init__(self, limit: _Optional[int] = ...) -> None: ...

class AuditEntry(_message.Message):
    __slots__ = ("at", "actor", "action", "target", "details")
    AT_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    DETAILS_FIELD_NUMBER: _ClassVar[int]
    at: _timestamp_pb2.Timestamp
    actor: str
    action: str
    target: str
    details: str
    def __init__(self, at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., actor: _Optional[str] = ..., action: _Optional[str] = ..., target: _Optional[str] = ..., details: _Optional[str] = ...) -> None: ...

class ListAuditLogResponse(_message.Message):
    __slots__ = ("entries",)
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[AuditEntry]
    def __init__(self, entries: _Optional[_Iterable[_Union[AuditEntry, _Mapping]]] = ...) -> None: ...
