from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CodeType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OK: _ClassVar[CodeType]
    TEMP_ERROR: _ClassVar[CodeType]
    PERM_ERROR: _ClassVar[CodeType]
OK: CodeType
TEMP_ERROR: CodeType
PERM_ERROR: CodeType

class BuiltinsPodMessage(_message.Message):
    __slots__ = ("name", "host_ip", "namespace", "tenant", "labels", "arktos_network", "phase", "interfaces", "annotations")
    class AnnotationsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    HOST_IP_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    ARKTOS_NETWORK_FIELD_NUMBER: _ClassVar[int]
    PHASE_FIELD_NUMBER: _ClassVar[int]
    INTERFACES_FIELD_NUMBER: _ClassVar[int]
    ANNOTATIONS_FIELD_NUMBER: _ClassVar[int]
    name: str
    host_ip: str
    namespace: str
    tenant: str
    labels: str
    arktos_network: str
    phase: str
    interfaces: _containers.RepeatedCompositeFieldContainer[InterfacesMessage]
    annotations: _containers.ScalarMap[str, str]
    def __init__(self, name: _Optional[str] = ..., host_ip: _Optional[str] = ..., namespace: _Optional[str] = ..., tenant: _Optional[str] = ..., labels: _Optional[str] = ..., arktos_network: _Optional[str] = ..., phase: _Optional[str] = ..., interfaces: _Optional[_Iterable[_Union[InterfacesMessage, _Mapping]]] = ..., annotations: _Optional[_Mapping[str, str]] = ...) -> None: ...

class InterfacesMessage(_message.Message):
    __slots__ = ("name", "ip", "subnet")
    NAME_FIELD_NUMBER: _ClassVar[int]
    IP_FIELD_NUMBER: _ClassVar[int]
    SUBNET_FIELD_NUMBER: _ClassVar[int]
    name: str
    ip: str
    subnet: str
    def __init__(self, name: _Optional[str] = ..., ip: _Optional[str] = ..., subnet: _Optional[str] = ...) -> None: ...

class ReturnCode(_message.Message):
    __slots__ = ("code", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: CodeType
    message: str
    def __init__(self, code: _Optional[_Union[CodeType, str]] = ..., message: _Optional[str] = ...) -> None: ...
