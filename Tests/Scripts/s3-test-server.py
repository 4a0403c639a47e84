#!/usr/bin/env python3
"""An S3 server for media-worker's tests: moto with SigV4 authentication on, behind a small proxy
that can inject faults (a response cut midway, an error status) on request.

Prints one JSON line with the endpoint, bucket and credentials once everything is ready, then runs
until its parent process exits.

Fault control, on the proxy's own port:
  POST /__faults__  {"match": "GET /bucket/key", "kind": "cut", "after": 1000, "times": 1}
                    {"match": "PUT /bucket/", "kind": "status", "status": 503, "code": "SlowDown", "times": 2}
  GET /__faults__   {"requests": ["GET /bucket/key HTTP/1.1 range=bytes=10-", ...], "injected": N}
  DELETE /__faults__ forgets the rules and the request log.
A request whose request line contains `match` gets the fault while `times` lasts.
"""
import json
import os
import socket
import sys
import threading
import time

# The first calls (creating the IAM user, its key and policy) are let through unsigned; every call
# after them must be signed with that key, or moto answers 403.
os.environ["INITIAL_NO_AUTH_ACTION_COUNT"] = "3"
os.environ.setdefault("MOTO_S3_DEFAULT_MAX_KEYS", "1000")

import boto3  # noqa: E402
from moto.iam import access_control  # noqa: E402
from moto.server import ThreadedMotoServer  # noqa: E402
from urllib.parse import parse_qsl, quote, urlsplit  # noqa: E402

# moto checks a signature against the query as its server decoded it, so a value holding "/" (the
# prefix of a ListObjectsV2) is canonicalised as "/" where S3 and every client sign "%2F" (boto3's
# own list_objects_v2(Prefix="a/") is refused too). Re-encode the query as S3 does.
_create_aws_request = access_control.IAMRequestBase._create_aws_request


def _create_aws_request_with_s3_query(self):
    request = _create_aws_request(self)
    parts = urlsplit(request.url)
    if parts.query:
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        query = "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in pairs)
        request.url = parts._replace(query=query).geturl()
    return request


access_control.IAMRequestBase._create_aws_request = _create_aws_request_with_s3_query

BUCKET = "media-worker-test"
REGION = "us-east-1"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Faults:
    def __init__(self):
        self.lock = threading.Lock()
        self.rules = []
        self.requests = []
        self.injected = 0

    def take(self, request_line):
        with self.lock:
            self.requests.append(request_line)
            for rule in self.rules:
                if rule["times"] > 0 and rule["match"] in request_line:
                    rule["times"] -= 1
                    self.injected += 1
                    return dict(rule)
        return None


def read_head(conn, buffer):
    while b"\r\n\r\n" not in buffer:
        chunk = conn.recv(65536)
        if not chunk:
            return None, buffer
        buffer += chunk
    head, rest = buffer.split(b"\r\n\r\n", 1)
    return head.decode("latin-1"), rest


def header(head, name):
    for line in head.split("\r\n")[1:]:
        key, _, value = line.partition(":")
        if key.strip().lower() == name:
            return value.strip()
    return None


def with_connection_close(head):
    lines = [line for line in head.split("\r\n") if not line.lower().startswith("connection:")]
    return "\r\n".join(lines + ["Connection: close"])


def respond(conn, status, body, content_type="application/xml"):
    data = body.encode()
    conn.sendall(
        f"HTTP/1.1 {status} Fault\r\nContent-Type: {content_type}\r\nContent-Length: {len(data)}\r\n"
        f"Connection: close\r\n\r\n".encode() + data)


def serve_connection(conn, upstream_port, faults):
    try:
        head, rest = read_head(conn, b"")
        if head is None:
            return
        length = int(header(head, "content-length") or 0)
        while len(rest) < length:
            chunk = conn.recv(min(1 << 20, length - len(rest)))
            if not chunk:
                return
            rest += chunk
        body = rest[:length]
        request_line = head.split("\r\n", 1)[0]
        method, path = request_line.split(" ")[:2]
        if path.startswith("/__faults__"):
            with faults.lock:
                if method == "POST":
                    rule = json.loads(body)
                    rule.setdefault("times", 1)
                    faults.rules.append(rule)
                elif method == "DELETE":
                    faults.rules, faults.requests, faults.injected = [], [], 0
                state = json.dumps({"requests": faults.requests, "injected": faults.injected})
            respond(conn, 200, state, "application/json")
            return
        byte_range = header(head, "range")
        rule = faults.take(request_line + (f" range={byte_range}" if byte_range else ""))
        if rule and rule["kind"] == "status":
            code = rule.get("code", "InternalError")
            respond(conn, rule["status"], f"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code>"
                    f"<Message>injected by the test proxy</Message></Error>")
            return
        upstream = socket.create_connection(("127.0.0.1", upstream_port))
        try:
            upstream.sendall((with_connection_close(head) + "\r\n\r\n").encode("latin-1") + body)
            response_head, response_rest = read_head(upstream, b"")
            if response_head is None:
                return
            conn.sendall((with_connection_close(response_head) + "\r\n\r\n").encode("latin-1"))
            budget = rule["after"] if rule and rule["kind"] == "cut" else None
            data = response_rest
            while True:
                if budget is not None:
                    conn.sendall(data[:budget])
                    budget -= len(data[:budget])
                    if budget <= 0:
                        return
                elif data:
                    conn.sendall(data)
                data = upstream.recv(1 << 20)
                if not data:
                    return
        finally:
            upstream.close()
    except (ConnectionError, OSError):
        pass
    finally:
        try:
            conn.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        conn.close()


def run_proxy(listener, upstream_port, faults):
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=serve_connection, args=(conn, upstream_port, faults), daemon=True).start()


def main():
    moto_port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=moto_port, verbose=False)
    server.start()
    moto = f"http://127.0.0.1:{moto_port}"
    iam = boto3.client("iam", endpoint_url=moto, region_name=REGION,
                       aws_access_key_id="bootstrap", aws_secret_access_key="bootstrap")
    iam.create_user(UserName="media-worker")
    key = iam.create_access_key(UserName="media-worker")["AccessKey"]
    iam.put_user_policy(UserName="media-worker", PolicyName="all", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
    s3 = boto3.client("s3", endpoint_url=moto, region_name=REGION,
                      aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"])
    s3.create_bucket(Bucket=BUCKET)

    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    threading.Thread(target=run_proxy, args=(listener, moto_port, Faults()), daemon=True).start()
    print(json.dumps({
        "endpoint": f"http://127.0.0.1:{listener.getsockname()[1]}",
        "bucket": BUCKET, "region": REGION,
        "accessKeyId": key["AccessKeyId"], "secretAccessKey": key["SecretAccessKey"],
    }), flush=True)
    parent = os.getppid()
    while os.getppid() == parent:
        time.sleep(0.5)
    server.stop()


if __name__ == "__main__":
    main()
