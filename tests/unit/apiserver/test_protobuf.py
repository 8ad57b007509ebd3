"""Kubernetes protobuf bodies: kubectl 1.32's typed `create` commands, read as their JSON form.

The captured bodies below are what kubectl 1.32.4 sent (`-v=9` prints them as a hex dump),
and each expected dict is what the same command printed with `--dry-run=client -o json`:
the JSON form the server would have got. The wire-format tests build bodies with the small
encoder here.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
from typing import Any

import pytest
from hypothesis import given, strategies as st

from arktos_lite.api import _errors as errors
from arktos_lite.apiserver import _http as http, _protobuf as protobuf

Obj = dict[str, Any]


@dataclasses.dataclass(frozen=True, slots=True)
class Capture:
    command: str
    body: str  # hex
    expected: Obj


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# The throwaway self-signed pair `kubectl create secret tls` was given.
TLS_CRT = """\
-----BEGIN CERTIFICATE-----
MIIBhDCCASmgAwIBAgIUSnIFVXJYYH2DbfEZIAkMBXOUH3EwCgYIKoZIzj0EAwIw
FzEVMBMGA1UEAwwMZXhhbXBsZS50ZXN0MB4XDTI2MTEyODE3MjIyNloXDTM2MTEy
NTE3MjIyNlowFzEVMBMGA1UEAwwMZXhhbXBsZS50ZXN0MFkwEwYHKoZIzj0CAQYI
KoZIzj0DAQcDQgAEp3qN0r/Swp+2tKVyb2X+RFK5aYSVZw50G86JsGDYdNqfBLHl
RZswvhaE65u1oZOZ6RViiFxkFHobY6z7z0enIaNTMFEwHQYDVR0OBBYEFB898yEC
neOoK5iQhZRBZQeGi+BlMB8GA1UdIwQYMBaAFB898yECneOoK5iQhZRBZQeGi+Bl
MA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDSQAwRgIhAM4X1gfGzhElyBZL
Rkprrza3bJae4eUgUDwyAYmGuvjRAiEA9IHzaMhTGr5wzHLuB3olOeYQJ5zH3lgf
HlvOh6ChP0w=
-----END CERTIFICATE-----
"""
TLS_KEY = """\
-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQglZN7elqsno+nv7N9
ZALNSooqfBqxvgKrbUojwd4W/XahRANCAASneo3Sv9LCn7a0pXJvZf5EUrlphJVn
DnQbzomwYNh02p8EseVFmzC+FoTrm7Whk5npFWKIXGQUehtjrPvPR6ch
-----END PRIVATE KEY-----
"""
DOCKER_CONFIG = (
    '{"auths":{"registry.example.com":{"username":"u","password":"p",'
    '"email":"u@example.com","auth":"dTpw"}}}'
)

# Files the commands read: blob.bin is b"\x00\x01\xfe\xffbin", app.properties "hello=world\n".

CAPTURES = [
    Capture(
        "kubectl create namespace x",
        (
            "6b3873000a0f0a02763112094e616d65737061636512190a110a017812001a0022002a0032003800"
            "420012001a020a001a002200"
        ),
        {
            "kind": "Namespace",
            "apiVersion": "v1",
            "metadata": {"name": "x", "creationTimestamp": None},
            "spec": {},
            "status": {},
        },
    ),
    Capture(
        "kubectl create namespace team-a --save-config",
        (
            "6b3873000a0f0a02763112094e616d65737061636512c9010ac0010a067465616d2d6112001a0022"
            "002a0032003800420062a7010a306b75626563746c2e6b756265726e657465732e696f2f6c617374"
            "2d6170706c6965642d636f6e66696775726174696f6e12737b226b696e64223a224e616d65737061"
            "6365222c2261706956657273696f6e223a227631222c226d65746164617461223a7b226e616d6522"
            "3a227465616d2d61222c226372656174696f6e54696d657374616d70223a6e756c6c7d2c22737065"
            "63223a7b7d2c22737461747573223a7b7d7d0a12001a020a001a002200"
        ),
        {
            "kind": "Namespace",
            "apiVersion": "v1",
            "metadata": {
                "name": "team-a",
                "creationTimestamp": None,
                "annotations": {
                    "kubectl.kubernetes.io/last-applied-configuration": (
                        '{"kind":"Namespace","apiVersion":"v1","metadata":{"name":"team-a",'
                        '"creationTimestamp":null},"spec":{},"status":{}}\n'
                    )
                },
            },
            "spec": {},
            "status": {},
        },
    ),
    Capture(
        "kubectl create configmap cm1 --from-literal=a=b --from-literal=empty=",
        (
            "6b3873000a0f0a0276311209436f6e6669674d617012280a130a03636d3112001a0022002a003200"
            "3800420012060a016112016212090a05656d70747912001a002200"
        ),
        {
            "kind": "ConfigMap",
            "apiVersion": "v1",
            "metadata": {"name": "cm1", "creationTimestamp": None},
            "data": {"a": "b", "empty": ""},
        },
    ),
    Capture(
        "kubectl create configmap cm2 -n kube-system --from-file=blob.bin "
        "--from-file=app.properties",
        (
            "6b3873000a0f0a0276311209436f6e6669674d617012550a1e0a03636d3212001a0b6b7562652d73"
            "797374656d22002a00320038004200121e0a0e6170702e70726f70657274696573120c68656c6c6f"
            "3d776f726c640a1a130a08626c6f622e62696e12070001feff62696e1a002200"
        ),
        {
            "kind": "ConfigMap",
            "apiVersion": "v1",
            "metadata": {"name": "cm2", "namespace": "kube-system", "creationTimestamp": None},
            "data": {"app.properties": "hello=world\n"},
            "binaryData": {"blob.bin": "AAH+/2Jpbg=="},
        },
    ),
    Capture(
        "kubectl create configmap cm3 --from-env-file=app.properties",
        (
            "6b3873000a0f0a0276311209436f6e6669674d617012250a130a03636d3312001a0022002a003200"
            "38004200120e0a0568656c6c6f1205776f726c641a002200"
        ),
        {
            "kind": "ConfigMap",
            "apiVersion": "v1",
            "metadata": {"name": "cm3", "creationTimestamp": None},
            "data": {"hello": "world"},
        },
    ),
    Capture(
        "kubectl create secret generic s1 --from-literal=user=admin --from-literal=pass=s3cr3t",
        (
            "6b3873000a0c0a027631120653656372657412350a120a02733112001a0022002a00320038004200"
            "120e0a04706173731206733363723374120d0a0475736572120561646d696e1a001a002200"
        ),
        {
            "kind": "Secret",
            "apiVersion": "v1",
            "metadata": {"name": "s1", "creationTimestamp": None},
            "data": {"pass": "czNjcjN0", "user": "YWRtaW4="},
        },
    ),
    Capture(
        "kubectl create secret generic s2 --type=example.com/custom --from-file=blob.bin",
        (
            "6b3873000a0c0a0276311206536563726574123d0a120a02733212001a0022002a00320038004200"
            "12130a08626c6f622e62696e12070001feff62696e1a126578616d706c652e636f6d2f637573746f"
            "6d1a002200"
        ),
        {
            "kind": "Secret",
            "apiVersion": "v1",
            "metadata": {"name": "s2", "creationTimestamp": None},
            "data": {"blob.bin": "AAH+/2Jpbg=="},
            "type": "example.com/custom",
        },
    ),
    Capture(
        "kubectl create secret generic envs --from-env-file=app.properties -n kube-public",
        (
            "6b3873000a0c0a027631120653656372657412330a1f0a04656e767312001a0b6b7562652d707562"
            "6c696322002a00320038004200120e0a0568656c6c6f1205776f726c641a001a002200"
        ),
        {
            "kind": "Secret",
            "apiVersion": "v1",
            "metadata": {"name": "envs", "namespace": "kube-public", "creationTimestamp": None},
            "data": {"hello": "d29ybGQ="},
        },
    ),
    Capture(
        "kubectl create secret tls tls1 --cert=tls.crt --key=tls.key",
        (
            "6b3873000a0c0a02763112065365637265741283070a140a04746c733112001a0022002a00320038"
            "00420012d7040a07746c732e63727412cb042d2d2d2d2d424547494e204345525449464943415445"
            "2d2d2d2d2d0a4d4949426844434341536d674177494241674955536e494656584a59594832446266"
            "455a49416b4d42584f5548334577436759494b6f5a497a6a3045417749770a467a45564d424d4741"
            "3155454177774d5a586868625842735a5335305a584e304d423458445449324d5445794f4445334d"
            "6a49794e6c6f5844544d324d5445790a4e5445334d6a49794e6c6f77467a45564d424d4741315545"
            "4177774d5a586868625842735a5335305a584e304d466b77457759484b6f5a497a6a304341515949"
            "0a4b6f5a497a6a304441516344516741457033714e30722f5377702b32744b56796232582b52464b"
            "35615953565a7735304738364a73474459644e7166424c486c0a525a737776686145363575316f5a"
            "4f5a365256696946786b46486f6259367a377a30656e49614e544d464577485159445652304f4242"
            "594546423839387945430a6e654f6f4b356951685a52425a516547692b426c4d4238474131556449"
            "7751594d42614146423839387945436e654f6f4b356951685a52425a516547692b426c0a4d413847"
            "41315564457745422f7751464d414d4241663877436759494b6f5a497a6a30454177494453514177"
            "52674968414d3458316766477a68456c79425a4c0a526b7072727a6133624a616534655567554477"
            "7941596d4775766a52416945413949487a614d6854477235777a484c7542336f6c4f6559514a357a"
            "48336c67660a486c764f683643685030773d0a2d2d2d2d2d454e442043455254494649434154452d"
            "2d2d2d2d0a12fd010a07746c732e6b657912f1012d2d2d2d2d424547494e2050524956415445204b"
            "45592d2d2d2d2d0a4d494748416745414d424d4742797147534d34394167454743437147534d3439"
            "417745484247307761774942415151676c5a4e37656c71736e6f2b6e76374e390a5a414c4e536f6f"
            "716642717876674b7262556f6a776434572f58616852414e434141536e656f335376394c436e3761"
            "3070584a765a66354555726c70684a566e0a446e51627a6f6d77594e683032703845736556466d7a"
            "432b466f54726d3757686b356e7046574b49584751556568746a72507650523663680a2d2d2d2d2d"
            "454e442050524956415445204b45592d2d2d2d2d0a1a116b756265726e657465732e696f2f746c73"
            "1a002200"
        ),
        {
            "kind": "Secret",
            "apiVersion": "v1",
            "metadata": {"name": "tls1", "creationTimestamp": None},
            "data": {"tls.crt": b64(TLS_CRT), "tls.key": b64(TLS_KEY)},
            "type": "kubernetes.io/tls",
        },
    ),
    Capture(
        "kubectl create secret docker-registry reg1 --docker-server=registry.example.com "
        "--docker-username=u --docker-password=p --docker-email=u@example.com",
        (
            "6b3873000a0c0a027631120653656372657412b5010a140a047265673112001a0022002a00320038"
            "004200127d0a112e646f636b6572636f6e6669676a736f6e12687b226175746873223a7b22726567"
            "69737472792e6578616d706c652e636f6d223a7b22757365726e616d65223a2275222c2270617373"
            "776f7264223a2270222c22656d61696c223a2275406578616d706c652e636f6d222c226175746822"
            "3a2264547077227d7d7d1a1e6b756265726e657465732e696f2f646f636b6572636f6e6669676a73"
            "6f6e1a002200"
        ),
        {
            "kind": "Secret",
            "apiVersion": "v1",
            "metadata": {"name": "reg1", "creationTimestamp": None},
            "data": {".dockerconfigjson": b64(DOCKER_CONFIG)},
            "type": "kubernetes.io/dockerconfigjson",
        },
    ),
    Capture(
        "kubectl create serviceaccount sa2 -n kube-system",
        (
            "6b3873000a140a027631120e536572766963654163636f756e7412200a1e0a0373613212001a0b6b"
            "7562652d73797374656d22002a003200380042001a002200"
        ),
        {
            "kind": "ServiceAccount",
            "apiVersion": "v1",
            "metadata": {"name": "sa2", "namespace": "kube-system", "creationTimestamp": None},
        },
    ),
    Capture(
        "kubectl create service clusterip svc1 --tcp=80:8080",
        (
            "6b3873000a0d0a027631120753657276696365126c0a210a047376633112001a0022002a00320038"
            "0042005a0b0a0361707012047376633112430a1b0a0738302d383038301203544350185022070800"
            "10903f1a002800120b0a036170701204737663311a002209436c757374657249503a00420052005a"
            "00600068001a020a001a002200"
        ),
        {
            "kind": "Service",
            "apiVersion": "v1",
            "metadata": {"name": "svc1", "creationTimestamp": None, "labels": {"app": "svc1"}},
            "spec": {
                "ports": [{"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080}],
                "selector": {"app": "svc1"},
                "type": "ClusterIP",
            },
            "status": {"loadBalancer": {}},
        },
    ),
    Capture(
        "kubectl create service clusterip headless --clusterip=None --tcp=5678:http",
        (
            "6b3873000a0d0a0276311207536572766963651282010a290a08686561646c65737312001a002200"
            "2a003200380042005a0f0a036170701208686561646c65737312510a210a09353637382d68747470"
            "120354435018ae2c220a080110001a04687474702800120f0a036170701208686561646c6573731a"
            "044e6f6e652209436c757374657249503a00420052005a00600068001a020a001a002200"
        ),
        {
            "kind": "Service",
            "apiVersion": "v1",
            "metadata": {
                "name": "headless",
                "creationTimestamp": None,
                "labels": {"app": "headless"},
            },
            "spec": {
                "ports": [
                    {"name": "5678-http", "protocol": "TCP", "port": 5678, "targetPort": "http"}
                ],
                "selector": {"app": "headless"},
                "clusterIP": "None",
                "type": "ClusterIP",
            },
            "status": {"loadBalancer": {}},
        },
    ),
    Capture(
        "kubectl create service nodeport np1 --tcp=80:8080 --node-port=30080",
        (
            "6b3873000a0d0a027631120753657276696365126a0a1f0a036e703112001a0022002a0032003800"
            "42005a0a0a0361707012036e703112430a1d0a0738302d3830383012035443501850220708001090"
            "3f1a002880eb01120a0a0361707012036e70311a0022084e6f6465506f72743a00420052005a0060"
            "0068001a020a001a002200"
        ),
        {
            "kind": "Service",
            "apiVersion": "v1",
            "metadata": {"name": "np1", "creationTimestamp": None, "labels": {"app": "np1"}},
            "spec": {
                "ports": [
                    {
                        "name": "80-8080",
                        "protocol": "TCP",
                        "port": 80,
                        "targetPort": 8080,
                        "nodePort": 30080,
                    }
                ],
                "selector": {"app": "np1"},
                "type": "NodePort",
            },
            "status": {"loadBalancer": {}},
        },
    ),
    Capture(
        "kubectl create service loadbalancer lb1 --tcp=443:8443,80",
        (
            "6b3873000a0d0a0276311207536572766963651285010a1f0a036c623112001a0022002a00320038"
            "0042005a0a0a0361707012036c6231125e0a1d0a083434332d38343433120354435018bb03220708"
            "0010fb411a0028000a150a023830120354435018502206080010501a002800120a0a036170701203"
            "6c62311a00220c4c6f616442616c616e6365723a00420052005a00600068001a020a001a002200"
        ),
        {
            "kind": "Service",
            "apiVersion": "v1",
            "metadata": {"name": "lb1", "creationTimestamp": None, "labels": {"app": "lb1"}},
            "spec": {
                "ports": [
                    {"name": "443-8443", "protocol": "TCP", "port": 443, "targetPort": 8443},
                    {"name": "80", "protocol": "TCP", "port": 80, "targetPort": 80},
                ],
                "selector": {"app": "lb1"},
                "type": "LoadBalancer",
            },
            "status": {"loadBalancer": {}},
        },
    ),
    Capture(
        "kubectl create service externalname ext1 --external-name=db.example.com",
        (
            "6b3873000a0d0a02763112075365727669636512600a210a046578743112001a0022002a00320038"
            "0042005a0b0a036170701204657874311237120b0a036170701204657874311a00220c4578746572"
            "6e616c4e616d653a004200520e64622e6578616d706c652e636f6d5a00600068001a020a001a0022"
            "00"
        ),
        {
            "kind": "Service",
            "apiVersion": "v1",
            "metadata": {"name": "ext1", "creationTimestamp": None, "labels": {"app": "ext1"}},
            "spec": {
                "selector": {"app": "ext1"},
                "type": "ExternalName",
                "externalName": "db.example.com",
            },
            "status": {"loadBalancer": {}},
        },
    ),
    Capture(
        "kubectl create deployment web2 --image=nginx:1.27 --image=redis --replicas=3 --port=8080",
        (
            "6b3873000a150a07617070732f7631120a4465706c6f796d656e7412e7010a210a04776562321200"
            "1a0022002a003200380042005a0b0a0361707012047765623212b3010803120d0a0b0a0361707012"
            "04776562321a97010a1d0a0012001a0022002a003200380042005a0b0a0361707012047765623212"
            "7612340a056e67696e78120a6e67696e783a312e32372a00320b0a00100018903f22002a0042006a"
            "007200800100880100900100a2010012220a057265646973120572656469732a0042006a00720080"
            "0100880100900100a201001a00320042004a0052005800600068008201008a01009a0100c2010022"
            "020a00280038001a0c0800100018002000280038001a002200"
        ),
        {
            "kind": "Deployment",
            "apiVersion": "apps/v1",
            "metadata": {"name": "web2", "creationTimestamp": None, "labels": {"app": "web2"}},
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": {"app": "web2"}},
                "template": {
                    "metadata": {"creationTimestamp": None, "labels": {"app": "web2"}},
                    "spec": {
                        "containers": [
                            {
                                "name": "nginx",
                                "image": "nginx:1.27",
                                "ports": [{"containerPort": 8080}],
                                "resources": {},
                            },
                            {"name": "redis", "image": "redis", "resources": {}},
                        ]
                    },
                },
                "strategy": {},
            },
            "status": {},
        },
    ),
    Capture(
        "kubectl create deployment zero --image=nginx --replicas=0",
        (
            "6b3873000a150a07617070732f7631120a4465706c6f796d656e7412af010a210a047a65726f1200"
            "1a0022002a003200380042005a0b0a0361707012047a65726f127c0800120d0a0b0a036170701204"
            "7a65726f1a610a1d0a0012001a0022002a003200380042005a0b0a0361707012047a65726f124012"
            "220a056e67696e7812056e67696e782a0042006a007200800100880100900100a201001a00320042"
            "004a0052005800600068008201008a01009a0100c2010022020a00280038001a0c08001000180020"
            "00280038001a002200"
        ),
        {
            "kind": "Deployment",
            "apiVersion": "apps/v1",
            "metadata": {"name": "zero", "creationTimestamp": None, "labels": {"app": "zero"}},
            "spec": {
                "replicas": 0,
                "selector": {"matchLabels": {"app": "zero"}},
                "template": {
                    "metadata": {"creationTimestamp": None, "labels": {"app": "zero"}},
                    "spec": {"containers": [{"name": "nginx", "image": "nginx", "resources": {}}]},
                },
                "strategy": {},
            },
            "status": {},
        },
    ),
    Capture(
        "kubectl create deployment cmd --image=busybox --port=8080 -- sh -c 'sleep 1000'",
        (
            "6b3873000a150a07617070732f7631120a4465706c6f796d656e7412d2010a1f0a03636d6412001a"
            "0022002a003200380042005a0a0a036170701203636d6412a0010801120c0a0a0a03617070120363"
            "6d641a85010a1c0a0012001a0022002a003200380042005a0a0a036170701203636d64126512470a"
            "0762757379626f78120762757379626f781a0273681a022d631a0a736c65657020313030302a0032"
            "0b0a00100018903f22002a0042006a007200800100880100900100a201001a00320042004a005200"
            "5800600068008201008a01009a0100c2010022020a00280038001a0c080010001800200028003800"
            "1a002200"
        ),
        {
            "kind": "Deployment",
            "apiVersion": "apps/v1",
            "metadata": {"name": "cmd", "creationTimestamp": None, "labels": {"app": "cmd"}},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": "cmd"}},
                "template": {
                    "metadata": {"creationTimestamp": None, "labels": {"app": "cmd"}},
                    "spec": {
                        "containers": [
                            {
                                "name": "busybox",
                                "image": "busybox",
                                "command": ["sh", "-c", "sleep 1000"],
                                "ports": [{"containerPort": 8080}],
                                "resources": {},
                            }
                        ]
                    },
                },
                "strategy": {},
            },
            "status": {},
        },
    ),
    Capture(
        "kubectl create job j1 --image=busybox -- echo hello world",
        (
            "6b3873000a0f0a0862617463682f763112034a6f62128e010a120a026a3112001a0022002a003200"
            "38004200126e326c0a100a0012001a0022002a00320038004200125812350a026a31120762757379"
            "626f781a046563686f1a0568656c6c6f1a05776f726c642a0042006a007200800100880100900100"
            "a201001a054e65766572320042004a0052005800600068008201008a01009a0100c201001a082000"
            "280030003a001a002200"
        ),
        {
            "kind": "Job",
            "apiVersion": "batch/v1",
            "metadata": {"name": "j1", "creationTimestamp": None},
            "spec": {
                "template": {
                    "metadata": {"creationTimestamp": None},
                    "spec": {
                        "containers": [
                            {
                                "name": "j1",
                                "image": "busybox",
                                "command": ["echo", "hello", "world"],
                                "resources": {},
                            }
                        ],
                        "restartPolicy": "Never",
                    },
                }
            },
            "status": {},
        },
    ),
    Capture(
        "kubectl create job j2 --image=busybox",
        (
            "6b3873000a0f0a0862617463682f763112034a6f62127a0a120a026a3212001a0022002a00320038"
            "004200125a32580a100a0012001a0022002a00320038004200124412210a026a3212076275737962"
            "6f782a0042006a007200800100880100900100a201001a054e65766572320042004a005200580060"
            "0068008201008a01009a0100c201001a082000280030003a001a002200"
        ),
        {
            "kind": "Job",
            "apiVersion": "batch/v1",
            "metadata": {"name": "j2", "creationTimestamp": None},
            "spec": {
                "template": {
                    "metadata": {"creationTimestamp": None},
                    "spec": {
                        "containers": [{"name": "j2", "image": "busybox", "resources": {}}],
                        "restartPolicy": "Never",
                    },
                }
            },
            "status": {},
        },
    ),
    Capture(
        "kubectl create cronjob cj1 --image=busybox '--schedule=*/5 * * * *' -- date",
        (
            "6b3873000a130a0862617463682f7631120743726f6e4a6f6212a7010a130a03636a3112001a0022"
            "002a00320038004200128d010a0b2a2f35202a202a202a202a1a002a7c0a130a03636a3112001a00"
            "22002a00320038004200126532630a100a0012001a0022002a00320038004200124f12280a03636a"
            "31120762757379626f781a04646174652a0042006a007200800100880100900100a201001a094f6e"
            "4661696c757265320042004a0052005800600068008201008a01009a0100c201001a001a002200"
        ),
        {
            "kind": "CronJob",
            "apiVersion": "batch/v1",
            "metadata": {"name": "cj1", "creationTimestamp": None},
            "spec": {
                "schedule": "*/5 * * * *",
                "jobTemplate": {
                    "metadata": {"name": "cj1", "creationTimestamp": None},
                    "spec": {
                        "template": {
                            "metadata": {"creationTimestamp": None},
                            "spec": {
                                "containers": [
                                    {
                                        "name": "cj1",
                                        "image": "busybox",
                                        "command": ["date"],
                                        "resources": {},
                                    }
                                ],
                                "restartPolicy": "OnFailure",
                            },
                        }
                    },
                },
            },
            "status": {},
        },
    ),
    Capture(
        "kubectl create quota q1 --hard=cpu=1,memory=1Gi,pods=10",
        (
            "6b3873000a130a027631120d5265736f7572636551756f746112430a120a02713112001a0022002a"
            "00320038004200122b0a0a0a0363707512030a01310a0f0a066d656d6f727912050a033147690a0c"
            "0a04706f647312040a0231301a001a002200"
        ),
        {
            "kind": "ResourceQuota",
            "apiVersion": "v1",
            "metadata": {"name": "q1", "creationTimestamp": None},
            "spec": {"hard": {"cpu": "1", "memory": "1Gi", "pods": "10"}},
            "status": {},
        },
    ),
]

UNSUPPORTED_CAPTURES = [
    Capture(
        "kubectl create priorityclass pc1 --value=1000",
        (
            "6b3873000a250a147363686564756c696e672e6b38732e696f2f7631120d5072696f72697479436c"
            "61737312320a130a0370633112001a0022002a0032003800420010e807180022002a14507265656d"
            "70744c6f7765725072696f726974791a002200"
        ),
        {"kind": "PriorityClass", "apiVersion": "scheduling.k8s.io/v1"},
    ),
    Capture(
        "kubectl create role r1 --verb=get --resource=pods",
        (
            "6b3873000a240a1c726261632e617574686f72697a6174696f6e2e6b38732e696f2f76311204526f"
            "6c6512230a120a02723112001a0022002a00320038004200120d0a0367657412001a04706f64731a"
            "002200"
        ),
        {"kind": "Role", "apiVersion": "rbac.authorization.k8s.io/v1"},
    ),
]


# A small protobuf encoder, for bodies kubectl does not send.

Part = bytes | str | int | list[Any]


def varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def field(number: int, value: Part) -> bytes:
    """A varint field for an int, a LEN field for bytes, text or a list of encoded fields."""
    if isinstance(value, bool | int):
        return varint(number << 3) + varint(int(value))
    if isinstance(value, list):
        value = b"".join(value)
    data = value.encode() if isinstance(value, str) else value
    return varint(number << 3 | 2) + varint(len(data)) + data


def entry(number: int, key: str, value: Part) -> bytes:
    return field(number, [field(1, key), field(2, value)])


def envelope(api_version: str, kind: str, raw: bytes, *, encoding: str = "") -> bytes:
    type_meta = [field(1, api_version), field(2, kind)]
    return protobuf.MAGIC + field(1, type_meta) + field(2, raw) + field(3, encoding) + field(4, "")


def namespace(*metadata: bytes) -> bytes:
    return envelope("v1", "Namespace", field(1, list(metadata)))


def pod_template_deployment(*pod_spec: bytes) -> bytes:
    container = field(2, [field(1, "app"), field(2, "nginx")])
    template = field(3, [field(2, [container, *pod_spec])])
    return envelope("apps/v1", "Deployment", field(2, [template]))


# Real bodies.


@pytest.mark.parametrize("capture", CAPTURES, ids=lambda c: c.command)
def test_kubectl_create_bodies_decode_to_their_json_form(capture: Capture) -> None:
    assert protobuf.decode(bytes.fromhex(capture.body)) == capture.expected


def test_every_typed_create_command_is_covered() -> None:
    commands = " ".join(c.command for c in CAPTURES)
    for command in (
        "create namespace",
        "create configmap",
        "create secret generic",
        "create secret tls",
        "create secret docker-registry",
        "create serviceaccount",
        "create service clusterip",
        "create service nodeport",
        "create deployment",
        "create job",
    ):
        assert f"kubectl {command} " in commands


@pytest.mark.parametrize("capture", UNSUPPORTED_CAPTURES, ids=lambda c: c.command)
def test_kinds_without_a_table_entry_ask_for_json(capture: Capture) -> None:
    with pytest.raises(errors.UnsupportedMediaType) as raised:
        protobuf.decode(bytes.fromhex(capture.body))
    kind, api_version = capture.expected["kind"], capture.expected["apiVersion"]
    assert f"{kind} ({api_version})" in raised.value.message
    assert "kubectl create -f -" in raised.value.message
    assert raised.value.code == 415


# Fields kubectl does not send, encoded here.


def test_object_meta_reads_every_field() -> None:
    managed = field(
        17,
        [
            field(1, "kubectl-client-side-apply"),
            field(2, "Update"),
            field(3, "v1"),
            field(4, [field(1, 1714564800)]),
            field(6, "FieldsV1"),
            field(7, [field(1, b'{"f:metadata":{"f:labels":{".":{}}}}')]),
        ],
    )
    owner = field(
        13,
        [
            field(5, "apps/v1"),
            field(1, "ReplicaSet"),
            field(3, "web-5d4f"),
            field(4, "0b5f-uid"),
            field(6, True),
            field(7, True),
        ],
    )
    body = namespace(
        field(1, "team-a"),
        field(2, ""),
        field(5, "ns-uid"),
        field(6, "42"),
        field(7, 3),
        field(8, [field(1, 1714564800), field(2, 123456789)]),
        field(9, [field(1, 1714568400)]),
        field(10, 30),
        entry(11, "app", "web"),
        entry(11, "tier", "front"),
        entry(12, "note", ""),
        owner,
        field(14, "kubernetes"),
        field(14, "example.com/cleanup"),
        managed,
    )
    assert protobuf.decode(body) == {
        "kind": "Namespace",
        "apiVersion": "v1",
        "metadata": {
            "name": "team-a",
            "uid": "ns-uid",
            "resourceVersion": "42",
            "generation": 3,
            # metav1.Time keeps whole seconds, as kube-apiserver does.
            "creationTimestamp": "2024-05-01T12:00:00Z",
            "deletionTimestamp": "2024-05-01T13:00:00Z",
            "deletionGracePeriodSeconds": 30,
            "labels": {"app": "web", "tier": "front"},
            "annotations": {"note": ""},
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": "web-5d4f",
                    "uid": "0b5f-uid",
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
            "finalizers": ["kubernetes", "example.com/cleanup"],
            "managedFields": [
                {
                    "manager": "kubectl-client-side-apply",
                    "operation": "Update",
                    "apiVersion": "v1",
                    "time": "2024-05-01T12:00:00Z",
                    "fieldsType": "FieldsV1",
                    "fieldsV1": {"f:metadata": {"f:labels": {".": {}}}},
                }
            ],
        },
        # Absent structs are still written, as Go's encoding/json does.
        "spec": {},
        "status": {},
    }


def test_pod_spec_fields_volumes_probes_and_security() -> None:
    probe = field(
        10,
        [
            field(1, [field(2, [field(1, "/healthz"), field(2, [field(1, 1), field(3, "http")])])]),
            field(2, 5),
            field(7, 0),
        ],
    )
    env = field(
        7,
        [
            field(1, "POD_NAME"),
            field(3, [field(1, [field(2, "metadata.name")])]),
        ],
    )
    env_from_secret = field(
        7,
        [
            field(1, "PASSWORD"),
            field(3, [field(4, [field(1, [field(1, "creds")]), field(2, "password")])]),
        ],
    )
    resources = field(8, [entry(1, "cpu", [field(1, "500m")]), entry(2, "memory", [])])
    mount = field(9, [field(1, "data"), field(2, True), field(3, "/data")])
    container = field(
        2,
        [
            field(1, "app"),
            field(2, "nginx"),
            field(6, [field(1, "http"), field(3, 8080), field(4, "TCP")]),
            env,
            env_from_secret,
            resources,
            mount,
            probe,
            field(15, [field(4, 0), field(5, True), field(1, [field(2, "ALL")])]),
        ],
    )
    volumes = [
        field(1, [field(1, "data"), field(2, [field(2, [field(1, "Memory")])])]),
        field(1, [field(1, "conf"), field(2, [field(19, [field(1, [field(1, "app")])])])]),
        field(1, [field(1, "creds"), field(2, [field(6, [field(1, "creds"), field(3, 0o400)])])]),
    ]
    pod_spec = [
        *volumes,
        container,
        field(3, "Always"),
        field(4, 0),
        entry(7, "disk", "ssd"),
        field(14, [field(4, 1000), field(4, 2000), field(5, 3000)]),
        field(22, [field(1, "node-role"), field(2, "Exists"), field(4, "NoSchedule")]),
    ]
    template = field(3, [field(1, [entry(11, "app", "web")]), field(2, pod_spec)])
    spec = field(
        2,
        [
            field(1, 0),
            field(2, [entry(1, "app", "web")]),
            template,
            field(
                4, [field(1, "RollingUpdate"), field(2, [field(1, [field(1, 1), field(3, "25%")])])]
            ),
        ],
    )
    obj = protobuf.decode(envelope("apps/v1", "Deployment", spec))
    assert obj["spec"]["replicas"] == 0
    assert obj["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": "25%"},
    }
    pod = obj["spec"]["template"]["spec"]
    assert pod["volumes"] == [
        {"name": "data", "emptyDir": {"medium": "Memory"}},
        {"name": "conf", "configMap": {"name": "app"}},
        {"name": "creds", "secret": {"secretName": "creds", "defaultMode": 256}},
    ]
    assert pod["restartPolicy"] == "Always"
    assert pod["terminationGracePeriodSeconds"] == 0
    assert pod["nodeSelector"] == {"disk": "ssd"}
    assert pod["securityContext"] == {"supplementalGroups": [1000, 2000], "fsGroup": 3000}
    assert pod["tolerations"] == [
        {"key": "node-role", "operator": "Exists", "effect": "NoSchedule"}
    ]
    (app,) = pod["containers"]
    assert app == {
        "name": "app",
        "image": "nginx",
        "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
        "env": [
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {
                "name": "PASSWORD",
                "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}},
            },
        ],
        # An empty quantity is Go's zero Quantity, written "0".
        "resources": {"limits": {"cpu": "500m"}, "requests": {"memory": "0"}},
        "volumeMounts": [{"name": "data", "readOnly": True, "mountPath": "/data"}],
        "livenessProbe": {
            "httpGet": {"path": "/healthz", "port": "http"},
            "initialDelaySeconds": 5,
            "terminationGracePeriodSeconds": 0,
        },
        "securityContext": {
            "capabilities": {"drop": ["ALL"]},
            "runAsUser": 0,
            "runAsNonRoot": True,
        },
    }


def test_packed_and_unpacked_repeated_numbers_read_alike() -> None:
    unpacked = field(14, [field(4, 1000), field(4, 2000)])
    packed = field(14, [field(4, varint(1000) + varint(2000))])
    for security in (unpacked, packed):
        obj = protobuf.decode(pod_template_deployment(security))
        assert obj["spec"]["template"]["spec"]["securityContext"] == {
            "supplementalGroups": [1000, 2000]
        }


def test_negative_numbers_are_twos_complement_varints() -> None:
    spec = field(2, [field(1, -1), field(6, -(2**31))])
    obj = protobuf.decode(envelope("apps/v1", "Deployment", spec))
    assert obj["spec"]["replicas"] == -1
    assert obj["spec"]["revisionHistoryLimit"] == -(2**31)


def test_a_message_field_sent_twice_is_merged() -> None:
    body = namespace(field(1, "a"), entry(11, "x", "1"))[: -0 or None]
    raw = field(1, [field(1, "a")]) + field(1, [entry(11, "x", "1")])
    body = envelope("v1", "Namespace", raw)
    assert protobuf.decode(body)["metadata"] == {
        "name": "a",
        "creationTimestamp": None,
        "labels": {"x": "1"},
    }


# What the decoder refuses.


def test_a_field_number_the_table_does_not_know_is_refused_by_name() -> None:
    with pytest.raises(errors.UnsupportedMediaType) as raised:
        protobuf.decode(namespace(field(1, "x"), field(15, "cluster-name")))
    assert "field 15 of k8s.io.apimachinery.pkg.apis.meta.v1.ObjectMeta" in raised.value.message
    assert "send the object as JSON" in raised.value.message


@given(number=st.integers(min_value=1, max_value=2**29 - 1))
def test_any_unknown_field_number_is_refused(number: int) -> None:
    known = {f.number for f in protobuf.MESSAGES["ObjectMeta"].fields}
    body = namespace(field(1, "x"), field(number, "?"))
    if number in known:
        return
    with pytest.raises(errors.UnsupportedMediaType) as raised:
        protobuf.decode(body)
    assert f"field {number} of " in raised.value.message


def test_a_message_type_the_table_does_not_describe_is_refused_by_name() -> None:
    affinity = field(18, [field(1, [])])
    with pytest.raises(errors.UnsupportedMediaType) as raised:
        protobuf.decode(pod_template_deployment(affinity))
    assert "k8s.io.api.core.v1.PodSpec.affinity (Affinity)" in raised.value.message


def test_bodies_without_the_magic_are_bad_requests() -> None:
    with pytest.raises(errors.BadRequest):
        protobuf.decode(b'{"kind": "Namespace"}')


def test_encoded_raw_messages_are_refused() -> None:
    body = envelope("v1", "Namespace", b"\x1f\x8b", encoding="gzip")
    with pytest.raises(errors.UnsupportedMediaType, match="gzip"):
        protobuf.decode(body)


def test_a_body_without_a_kind_is_a_bad_request() -> None:
    with pytest.raises(errors.BadRequest, match="apiVersion and kind"):
        protobuf.decode(protobuf.MAGIC + field(2, b""))


def test_a_field_with_the_wrong_wire_type_is_a_bad_request() -> None:
    with pytest.raises(errors.BadRequest, match="wire type"):
        protobuf.decode(namespace(field(1, 7)))


def test_an_int_or_string_of_an_unknown_type_is_a_bad_request() -> None:
    port = field(1, [field(3, 80), field(4, [field(1, 2), field(2, 80)])])
    body = envelope("v1", "Service", field(2, [port]))
    with pytest.raises(errors.BadRequest, match="IntOrString"):
        protobuf.decode(body)


# The wire reader.


@given(value=st.integers(min_value=0, max_value=2**64 - 1), tail=st.binary(max_size=8))
def test_varints_round_trip(value: int, tail: bytes) -> None:
    encoded = varint(value)
    assert protobuf.read_varint(encoded + tail, 0) == (value, len(encoded))


def test_varints_longer_than_64_bits_are_bad_requests() -> None:
    with pytest.raises(errors.BadRequest):
        protobuf.read_varint(b"\xff" * 10 + b"\x01", 0)
    with pytest.raises(errors.BadRequest):
        protobuf.read_varint(b"\xff" * 9 + b"\x02", 0)


wire_fields = st.one_of(
    st.builds(
        protobuf.WireField,
        st.integers(min_value=1, max_value=2**29 - 1),
        st.just(protobuf.WireType.VARINT),
        st.integers(min_value=0, max_value=2**64 - 1),
    ),
    st.builds(
        protobuf.WireField,
        st.integers(min_value=1, max_value=2**29 - 1),
        st.just(protobuf.WireType.LEN),
        st.binary(max_size=40),
    ),
    st.builds(
        protobuf.WireField,
        st.integers(min_value=1, max_value=2**29 - 1),
        st.just(protobuf.WireType.I64),
        st.integers(min_value=0, max_value=2**64 - 1),
    ),
    st.builds(
        protobuf.WireField,
        st.integers(min_value=1, max_value=2**29 - 1),
        st.just(protobuf.WireType.I32),
        st.integers(min_value=0, max_value=2**32 - 1),
    ),
)


def encode(wire: protobuf.WireField) -> bytes:
    key = varint(wire.number << 3 | wire.wire_type)
    if wire.wire_type == protobuf.WireType.VARINT:
        assert isinstance(wire.value, int)
        return key + varint(wire.value)
    if isinstance(wire.value, bytes):
        return key + varint(len(wire.value)) + wire.value
    size = 8 if wire.wire_type == protobuf.WireType.I64 else 4
    return key + wire.value.to_bytes(size, "little")


@given(fields=st.lists(wire_fields, max_size=8))
def test_fields_round_trip(fields: list[protobuf.WireField]) -> None:
    data = b"".join(encode(f) for f in fields)
    assert list(protobuf.iter_fields(data)) == fields


@given(wire=wire_fields, data=st.data())
def test_a_field_cut_short_is_a_bad_request(wire: protobuf.WireField, data: st.DataObject) -> None:
    encoded = encode(wire)
    cut = data.draw(st.integers(min_value=1, max_value=len(encoded) - 1))
    with pytest.raises(errors.BadRequest):
        list(protobuf.iter_fields(encoded[:cut]))


@given(data=st.data())
def test_a_real_body_cut_inside_its_object_is_a_bad_request(data: st.DataObject) -> None:
    capture = data.draw(st.sampled_from(CAPTURES))
    raw = bytes.fromhex(capture.body)
    # The envelope's raw object (field 2) follows the type, which kubectl writes first.
    after_type = len(protobuf.MAGIC) + 2 + raw[len(protobuf.MAGIC) + 1]
    raw_length, start = protobuf.read_varint(raw, after_type + 1)
    cut = data.draw(st.integers(min_value=after_type + 1, max_value=start + raw_length - 1))
    with pytest.raises(errors.BadRequest):
        protobuf.decode(raw[:cut])


@given(noise=st.binary(max_size=64))
def test_noise_is_refused_cleanly(noise: bytes) -> None:
    with contextlib.suppress(errors.BadRequest, errors.UnsupportedMediaType):
        protobuf.decode(protobuf.MAGIC + noise)


def test_the_table_declares_each_field_once() -> None:
    for message in protobuf.MESSAGES.values():
        numbers = [f.number for f in message.fields]
        names = [f.name for f in message.fields]
        assert len(set(numbers)) == len(numbers), message.name
        assert len(set(names)) == len(names), message.name
    for message in protobuf.KINDS.values():
        assert message in protobuf.MESSAGES


def test_request_bodies_of_the_protobuf_media_type_are_decoded() -> None:
    body = namespace(field(1, b"from-kubectl"))

    decoded = http._parse_body(body, protobuf.MEDIA_TYPE)

    assert decoded["kind"] == "Namespace"
    assert decoded["metadata"]["name"] == "from-kubectl"
