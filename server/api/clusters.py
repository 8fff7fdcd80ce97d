"""``/clusters``: where services run — Berth's own agents (``default``) and Swarms."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from catalog.names import SERVICE_NAME, schema_pattern

from ..application.clusters import ClusterRegistry
from ..context import current_berth
from .common import allow, json_body
from .openapi import _error_responses, _json, _path
from .schema import add_fragment


def register(bp: Blueprint) -> None:
    """Add the cluster routes to the API blueprint."""
    bp.add_url_rule("/clusters", view_func=list_clusters, methods=["GET"])
    bp.add_url_rule("/clusters", view_func=add_cluster, methods=["POST"])
    bp.add_url_rule("/clusters/<name>", view_func=remove_cluster, methods=["DELETE"])
    bp.add_url_rule("/clusters/nodes", view_func=list_nodes, methods=["GET"])


def _clusters() -> ClusterRegistry:
    return current_berth().application.clusters


def list_clusters() -> Any:
    """The default cluster (Berth's agents) and every Swarm."""
    allow("viewer")
    return jsonify({"items": _clusters().clusters()})


def add_cluster() -> Any:
    """Add a Swarm (admin): 201 with its record."""
    actor = allow("admin")
    record = _clusters().add(actor, json_body("ClusterRequest"))
    return jsonify(record), 201, {"Location": f"/api/v1/clusters/{record['name']}"}


def remove_cluster(name: str) -> Any:
    """Remove a Swarm's record (admin); refused while services are on it."""
    actor = allow("admin")
    _clusters().remove(actor, name)
    return "", 204


def list_nodes() -> Any:
    """Every Swarm's nodes, read from its manager (labels, availability, resources)."""
    allow("viewer")
    return jsonify({"items": _clusters().nodes()})


def _openapi() -> tuple[dict[str, Any], dict[str, Any]]:
    """This module's paths and schemas for the API document."""
    ref = {"$ref": "#/components/schemas/Cluster"}
    name = _path("name", {"type": "string", "pattern": schema_pattern(SERVICE_NAME)})

    def op(op_id: str, summary: str, ok: dict[str, Any], errors: str, **extra: Any) -> dict:
        return {"operationId": op_id, "summary": summary,
                "responses": {**ok, **_error_responses(errors)}, **extra}

    body = {"required": True, "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/ClusterRequest"}}}}
    items = {"type": "object", "properties": {"items": {"type": "array", "items": ref}}}
    paths = {
        "/clusters": {
            "get": op("listClusters", "Berth's own agents and every Swarm",
                      _json("OK", items), "401 403 503"),
            "post": op("addCluster", "Add a Swarm cluster (admin)", _json("Added", ref, "201"),
                       "400 401 403 409 413 415 422 503", requestBody=body)},
        "/clusters/{name}": {
            "delete": op("removeCluster", "Remove a Swarm cluster (admin)",
                         {"204": {"description": "Removed"}}, "401 403 404 409 503",
                         parameters=[name])},
        "/clusters/nodes": {
            "get": op("listClusterNodes", "Every Swarm's nodes, read from its manager",
                      _json("OK", {"type": "object"}), "401 403 503")},
    }
    schemas = {
        "Cluster": {"type": "object", "required": ["name", "kind"], "properties": {
            "name": {"type": "string"}, "kind": {"type": "string"},
            "url": {"type": ["string", "null"]}, "services": {"type": "integer"}}},
        "ClusterRequest": {
            "type": "object", "additionalProperties": False, "required": ["name", "url"],
            "properties": {
                "name": {"type": "string", "pattern": schema_pattern(SERVICE_NAME)},
                "url": {"type": "string", "maxLength": 500,
                        "pattern": "^(swarm|tcp|unix|ssh|http|https)://[^\\s]+$"},
                "kind": {"enum": ["swarm"]},
                "port_range": {"type": "array", "minItems": 2, "maxItems": 2,
                               "items": {"type": "integer", "minimum": 1,
                                         "maximum": 65535}}}},
    }
    return paths, schemas


add_fragment(*_openapi())
