#!/usr/bin/env python3
"""Runs moto's AWS server (EC2, SSM, SQS, IAM, EventBridge) on a loopback port,
with the faults real EC2 shows and moto does not:

* insufficient capacity: chosen (instance type, availability zone) pairs fail
  in instant CreateFleet requests. The failed overrides come back in the
  response's `Errors` list with the codes EC2 uses (InsufficientInstanceCapacity,
  UnfulfillableCapacity) and are not launched; the fleet falls through to the
  next override, as EC2 does. moto's own choice (the first override) is kept
  otherwise.
* throttling: a chosen share of EC2 calls gets `RequestLimitExceeded` with
  HTTP 503, as EC2 sends it. The draw is seeded, so a sequence of calls is
  throttled the same way on every run.

Faults are set at start (--faults JSON) and changed at run time:

    POST /_dovetail/faults   {"capacity": [{"instance_type": "m5.large",
                                            "zone": "us-east-1a",
                                            "code": "InsufficientInstanceCapacity",
                                            "capacity_type": "on-demand"}],
                              "throttle": {"share": 0.5, "seed": 7,
                                           "actions": ["CreateFleet"]}}
    GET  /_dovetail/faults   the faults in force
    GET  /_dovetail/calls    calls seen per service and action, throttled
                             calls and capacity errors returned
    DELETE /_dovetail/calls  zero those counters
    POST /_dovetail/public-parameters
                             {"region": "us-east-1", "parameters": {"/aws/service/...": "ami-..."}}
                             adds SSM public parameters that moto lacks (EKS
                             and Bottlerocket AMI aliases); the SSM API refuses
                             names under /aws/, as AWS does

`code` defaults to InsufficientInstanceCapacity and `capacity_type` (spot or
on-demand) to both; `actions` defaults to every EC2 action. Posting faults
replaces all of them and restarts the throttling draw from its seed.

Once listening, it prints one line to stdout, {"endpoint": "http://HOST:PORT"},
then logs to stderr. With --exit-with-stdin it exits when its standard input
closes, so it never outlives the process that started it.
"""

import argparse
import io
import json
import os
import random
import sys
import threading
import uuid
from urllib.parse import parse_qs

try:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.core.utils import utcnow
    from moto.ec2.models.fleets import Fleet
    from moto.ec2.responses.fleets import Fleets
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from moto.ssm.models import Parameter, ssm_backends
    from werkzeug.serving import make_server
except ImportError as err:
    sys.stderr.write(
        f"moto is not installed for {sys.executable} ({err}): run tests/moto/install.sh\n"
    )
    sys.exit(3)

EC2_API_VERSION = "2016-11-15"
CAPACITY_CODES = ("InsufficientInstanceCapacity", "UnfulfillableCapacity")
CAPACITY_TYPES = ("spot", "on-demand")
# X-Amz-Target prefixes of the JSON-protocol services, for counting calls.
TARGET_SERVICES = {"AmazonSQS": "sqs", "AmazonSSM": "ssm", "AWSEvents": "events"}


class SpecError(ValueError):
    """A control request (faults, parameters) that cannot be applied."""


class Faults:
    """The faults in force; shared by the request threads."""

    def __init__(self):
        self._lock = threading.Lock()
        self._spec = {}
        self._capacity = {}
        self._throttle = None
        self._rng = random.Random(0)

    def replace(self, spec):
        capacity, throttle = parse_faults(spec)
        with self._lock:
            self._spec = spec
            self._capacity = capacity
            self._throttle = throttle
            self._rng = random.Random(throttle["seed"] if throttle else 0)

    def spec(self):
        with self._lock:
            return self._spec

    def capacity_code(self, instance_type, zone, capacity_type):
        """The error code for launching this offering, or None if it has capacity."""
        with self._lock:
            fault = self._capacity.get((instance_type, zone))
        if fault is None or fault["capacity_type"] not in (None, capacity_type):
            return None
        return fault["code"]

    def throttles(self, action):
        with self._lock:
            t = self._throttle
            if t is None or (t["actions"] is not None and action not in t["actions"]):
                return False
            # Drawn only for calls the fault applies to, so the sequence of
            # throttled calls does not depend on unrelated traffic.
            return self._rng.random() < t["share"]


def parse_faults(spec):
    if not isinstance(spec, dict):
        raise SpecError("faults must be a JSON object with `capacity` and/or `throttle`")
    unknown = set(spec) - {"capacity", "throttle"}
    if unknown:
        raise SpecError(f"unknown fault kind(s) {sorted(unknown)}: use `capacity` or `throttle`")
    capacity = {}
    for i, entry in enumerate(spec.get("capacity") or []):
        where = f"capacity[{i}]"
        if not isinstance(entry, dict):
            raise SpecError(f"{where} must be an object")
        unknown = set(entry) - {"instance_type", "zone", "code", "capacity_type"}
        if unknown:
            raise SpecError(
                f"{where}: unknown field(s) {sorted(unknown)}: use instance_type, zone, code, capacity_type"
            )
        for field in ("instance_type", "zone"):
            if not isinstance(entry.get(field), str) or not entry[field]:
                raise SpecError(f"{where}.{field} is required (a string, e.g. m5.large / us-east-1a)")
        code = entry.get("code", CAPACITY_CODES[0])
        if code not in CAPACITY_CODES:
            raise SpecError(f"{where}.code is {code!r}: use one of {list(CAPACITY_CODES)}")
        capacity_type = entry.get("capacity_type")
        if capacity_type not in (None,) + CAPACITY_TYPES:
            raise SpecError(
                f"{where}.capacity_type is {capacity_type!r}: use one of {list(CAPACITY_TYPES)} or leave it out for both"
            )
        capacity[(entry["instance_type"], entry["zone"])] = {
            "code": code,
            "capacity_type": capacity_type,
        }
    throttle = spec.get("throttle")
    if throttle is not None:
        if not isinstance(throttle, dict):
            raise SpecError("throttle must be an object with share, seed and optional actions")
        unknown = set(throttle) - {"share", "seed", "actions"}
        if unknown:
            raise SpecError(f"throttle: unknown field(s) {sorted(unknown)}: use share, seed, actions")
        share = throttle.get("share")
        if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 <= share <= 1:
            raise SpecError(f"throttle.share is {share!r}: use a number from 0 to 1")
        seed = throttle.get("seed", 0)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise SpecError(f"throttle.seed is {seed!r}: use an integer")
        actions = throttle.get("actions")
        if actions is not None and (
            not isinstance(actions, list) or not all(isinstance(a, str) for a in actions)
        ):
            raise SpecError("throttle.actions must be a list of EC2 action names, e.g. [\"CreateFleet\"]")
        throttle = {
            "share": float(share),
            "seed": seed,
            "actions": None if actions is None else frozenset(actions),
        }
    return capacity, throttle


class Calls:
    """Counters of what the server saw, for tests that count API calls."""

    def __init__(self):
        self._lock = threading.Lock()
        self.reset()

    def reset(self):
        with self._lock:
            self._calls = {}
            self._throttled = {}
            self._capacity_errors = {}

    @staticmethod
    def _bump(counter, key, n=1):
        counter[key] = counter.get(key, 0) + n

    def call(self, key):
        with self._lock:
            self._bump(self._calls, key)

    def throttled(self, key):
        with self._lock:
            self._bump(self._throttled, key)

    def capacity_error(self, code):
        with self._lock:
            self._bump(self._capacity_errors, code)

    def snapshot(self):
        with self._lock:
            return {
                "calls": dict(self._calls),
                "throttled": dict(self._throttled),
                "capacity_errors": dict(self._capacity_errors),
            }


FAULTS = Faults()
CALLS = Calls()


# --- Insufficient capacity in CreateFleet -----------------------------------


def _zone_of(fleet, spec):
    """Where EC2 would place an override: its subnet's zone, else its own."""
    if spec.subnet_id:
        try:
            return fleet.ec2_backend.get_subnet(spec.subnet_id).availability_zone
        except Exception:  # an unknown subnet fails later, in moto, as it should
            return None
    overrides = spec.overrides or {}
    placement = overrides.get("Placement") or {}
    return overrides.get("AvailabilityZone") or placement.get("AvailabilityZone")


def _error_message(fleet, code, capacity_type, instance_type, zone):
    # The texts EC2 returns, so tests see what operators see in logs.
    if code == "UnfulfillableCapacity":
        return "Unable to fulfill capacity due to your request configuration. Please adjust your request and try again."
    if capacity_type == "spot":
        return "There is no Spot capacity available that matches your request."
    others = [
        z.name
        for z in fleet.ec2_backend.describe_availability_zones()
        if z.name != zone and FAULTS.capacity_code(instance_type, z.name, capacity_type) is None
    ]
    return (
        f"We currently do not have sufficient {instance_type} capacity in the Availability Zone you "
        f"requested ({zone}). Our system will be working on provisioning additional capacity. You can "
        f"currently get {instance_type} capacity by not specifying an Availability Zone in your request "
        f"or choosing {', '.join(others)}."
    )


_original_counts = Fleet.get_launch_spec_counts
_original_spot = Fleet.create_spot_requests
_original_on_demand = Fleet.create_on_demand_requests
_original_create_fleet = Fleets.create_fleet


def _launch_spec_counts(self, weight_to_add):
    capacity_type = getattr(self, "_dovetail_capacity_type", None)
    if self.fleet_type != "instant" or capacity_type is None:
        return _original_counts(self, weight_to_add)
    errors = self.__dict__.setdefault("_dovetail_errors", [])
    reported = self.__dict__.setdefault("_dovetail_reported", set())
    diversified = (self.spot_options or {}).get("AllocationStrategy") == "diversified"
    healthy, failed = [], []
    for spec in self.launch_specs:
        code = FAULTS.capacity_code(spec.instance_type, _zone_of(self, spec), capacity_type)
        if code is None:
            healthy.append(spec)
        elif healthy and not diversified:
            # Launched from an earlier override: EC2 never tried this one.
            continue
        else:
            failed.append((spec, code))
    for spec, code in failed:
        key = (id(spec), capacity_type)
        if key in reported:
            continue
        reported.add(key)
        zone = _zone_of(self, spec)
        entry = {
            "ErrorCode": code,
            "ErrorMessage": _error_message(self, code, capacity_type, spec.instance_type, zone),
            "Lifecycle": capacity_type,
        }
        if spec.launch_template_spec:
            entry["LaunchTemplateAndOverrides"] = {
                "LaunchTemplateSpecification": spec.launch_template_spec,
                **({"Overrides": spec.overrides} if spec.overrides else {}),
            }
        errors.append(entry)
        CALLS.capacity_error(code)
    if not healthy:
        return {}, 0.0
    all_specs = self.launch_specs
    self.launch_specs = healthy
    try:
        return _original_counts(self, weight_to_add)
    finally:
        self.launch_specs = all_specs


def _with_capacity_type(original, capacity_type):
    def launch(self, weight_to_add):
        self._dovetail_capacity_type = capacity_type
        try:
            return original(self, weight_to_add)
        finally:
            self._dovetail_capacity_type = None

    return launch


def _create_fleet(self):
    result = _original_create_fleet(self)
    fleet = self.ec2_backend.get_fleet(result.result["FleetId"])
    errors = getattr(fleet, "_dovetail_errors", None)
    if errors:
        result.result["Errors"] = errors
    return result


Fleet.get_launch_spec_counts = _launch_spec_counts
Fleet.create_spot_requests = _with_capacity_type(_original_spot, "spot")
Fleet.create_on_demand_requests = _with_capacity_type(_original_on_demand, "on-demand")
Fleets.create_fleet = _create_fleet


# --- SSM public parameters ---------------------------------------------------


def add_public_parameters(spec):
    if not isinstance(spec, dict) or set(spec) - {"region", "parameters"}:
        raise SpecError('public parameters must be {"region": "us-east-1", "parameters": {"/aws/service/...": "value"}}')
    region = spec.get("region", "us-east-1")
    parameters = spec.get("parameters")
    if not isinstance(region, str) or not isinstance(parameters, dict) or not parameters:
        raise SpecError('public parameters must be {"region": "us-east-1", "parameters": {"/aws/service/...": "value"}}')
    for name, value in parameters.items():
        if not name.startswith("/aws/service/") or not isinstance(value, str):
            raise SpecError(f"public parameter {name!r}: the name must start with /aws/service/ and the value be a string")
    backend = ssm_backends[DEFAULT_ACCOUNT_ID][region]
    for name, value in parameters.items():
        versions = backend._parameters[name]
        versions.append(
            Parameter(
                account_id=DEFAULT_ACCOUNT_ID,
                name=name,
                value=value,
                parameter_type="String",
                description=None,
                allowed_pattern=None,
                keyid=None,
                last_modified_date=utcnow(),
                version=len(versions) + 1,
                data_type="text",
            )
        )
    return {"region": region, "added": sorted(parameters)}


# --- The HTTP front: control endpoint, call counting, throttling ------------


def _json_response(start_response, status, body):
    data = json.dumps(body).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


def _throttled(start_response):
    request_id = str(uuid.uuid4())
    data = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        "<Response><Errors><Error><Code>RequestLimitExceeded</Code>"
        "<Message>Request limit exceeded.</Message></Error></Errors>"
        f"<RequestID>{request_id}</RequestID></Response>"
    ).encode()
    start_response(
        "503 Service Unavailable",
        [("Content-Type", "text/xml;charset=UTF-8"), ("Content-Length", str(len(data)))],
    )
    return [data]


def _service_and_action(environ, body):
    """Which AWS service and action a request is for, as moto routes it."""
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    form = {}
    if body and "x-www-form-urlencoded" in environ.get("CONTENT_TYPE", ""):
        form = parse_qs(body.decode("utf-8", "replace"))
    query = parse_qs(environ.get("QUERY_STRING", ""))
    action = (form.get("Action") or query.get("Action") or [None])[0]
    if action is None and "." in target:
        action = target.split(".", 1)[1]
    service = None
    auth = environ.get("HTTP_AUTHORIZATION", "")
    if "Credential=" in auth:
        scope = auth.split("Credential=", 1)[1].split(",", 1)[0].split("/")
        if len(scope) == 5:
            service = scope[3].lower()
    if service is None and target:
        service = TARGET_SERVICES.get(target.split(".", 1)[0])
    if service is None and (form.get("Version") or query.get("Version") or [None])[0] == EC2_API_VERSION:
        service = "ec2"
    return service or "unknown", action or environ.get("PATH_INFO", "")


class Front:
    def __init__(self, moto_app):
        self.moto_app = moto_app

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        if path.startswith("/_dovetail/"):
            return self.control(method, path, environ, start_response)
        if path.startswith("/moto-api"):
            return self.moto_app(environ, start_response)
        body = self.read_body(environ)
        service, action = _service_and_action(environ, body)
        key = f"{service}:{action}"
        CALLS.call(key)
        if service == "ec2" and FAULTS.throttles(action):
            CALLS.throttled(key)
            return _throttled(start_response)
        return self.moto_app(environ, start_response)

    @staticmethod
    def read_body(environ):
        # Buffered so both this front and moto can read it.
        length = environ.get("CONTENT_LENGTH")
        stream = environ["wsgi.input"]
        if length:
            body = stream.read(int(length))
        elif environ.get("wsgi.input_terminated"):
            body = stream.read()
        else:
            body = b""
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        return body

    def control(self, method, path, environ, start_response):
        if path == "/_dovetail/faults" and method == "GET":
            return _json_response(start_response, "200 OK", FAULTS.spec())
        if path == "/_dovetail/faults" and method in ("POST", "PUT"):
            try:
                spec = json.loads(self.read_body(environ) or b"{}")
                FAULTS.replace(spec)
            except (ValueError, SpecError) as err:
                return _json_response(start_response, "400 Bad Request", {"error": str(err)})
            return _json_response(start_response, "200 OK", FAULTS.spec())
        if path == "/_dovetail/public-parameters" and method == "POST":
            try:
                added = add_public_parameters(json.loads(self.read_body(environ) or b"{}"))
            except (ValueError, SpecError) as err:
                return _json_response(start_response, "400 Bad Request", {"error": str(err)})
            return _json_response(start_response, "200 OK", added)
        if path == "/_dovetail/calls" and method == "GET":
            return _json_response(start_response, "200 OK", CALLS.snapshot())
        if path == "/_dovetail/calls" and method == "DELETE":
            CALLS.reset()
            return _json_response(start_response, "200 OK", CALLS.snapshot())
        return _json_response(
            start_response,
            "404 Not Found",
            {
                "error": f"no {method} {path}: use GET/POST /_dovetail/faults, GET/DELETE /_dovetail/calls "
                "or POST /_dovetail/public-parameters"
            },
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (default: a free one)")
    parser.add_argument("--faults", default="{}", help="faults at start, as JSON (see above)")
    parser.add_argument("--exit-with-stdin", action="store_true", help="exit when standard input closes")
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    args = parser.parse_args()

    try:
        FAULTS.replace(json.loads(args.faults))
    except (ValueError, SpecError) as err:
        parser.error(f"--faults: {err}")

    if not args.verbose:
        import logging

        logging.getLogger("werkzeug").setLevel(logging.WARNING)

    server = make_server(
        args.host,
        args.port,
        Front(DomainDispatcherApplication(create_backend_app)),
        threaded=True,
        request_handler=MotoRequestHandler,
    )
    host, port = server.server_address[:2]
    print(json.dumps({"endpoint": f"http://{host}:{port}"}), flush=True)
    # Anything moto prints from now on goes to the log, not to a pipe that
    # nobody may be reading.
    os.dup2(2, 1)

    if args.exit_with_stdin:

        def watch_parent():
            while sys.stdin.buffer.read(4096):
                pass
            os._exit(0)

        threading.Thread(target=watch_parent, daemon=True).start()

    server.serve_forever()


if __name__ == "__main__":
    main()
