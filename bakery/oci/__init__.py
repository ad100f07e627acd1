"""OCI images: value types, a blob cache, a registry client, and three publish targets."""

from bakery.oci.cache import BlobCache
from bakery.oci.daemon import DaemonPublisher
from bakery.oci.errors import DaemonError, InvalidReference, LayoutError, OciError, RegistryError
from bakery.oci.layout import LayoutPublisher
from bakery.oci.model import Blob, Image, Layer, Manifest
from bakery.oci.publish import Found, Publisher
from bakery.oci.reference import Reference
from bakery.oci.registry import RegistryClient
from bakery.oci.remote import PushStats, RegistryPublisher

__all__ = [
    "Blob",
    "BlobCache",
    "DaemonError",
    "DaemonPublisher",
    "Found",
    "Image",
    "InvalidReference",
    "Layer",
    "LayoutError",
    "LayoutPublisher",
    "Manifest",
    "OciError",
    "Publisher",
    "PushStats",
    "Reference",
    "RegistryClient",
    "RegistryError",
    "RegistryPublisher",
]
