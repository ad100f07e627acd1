"""S3 or any S3-compatible endpoint, through boto3.

Credentials come from the standard AWS chain; an S3-compatible endpoint is set the standard
way too (`AWS_ENDPOINT_URL_S3` or `AWS_ENDPOINT_URL`). A single PUT or a multipart upload
becomes visible only when complete, so a failed upload never leaves a partial object.
"""

from pathlib import Path

import boto3
import botocore.exceptions
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

from packager.errors import CodePackagingException
from packager.stores.base import object_name, split_url
from stagekit.errors import ErrorKind

_CLIENT_CONFIG = Config(
    connect_timeout=5, read_timeout=60, retries={"max_attempts": 3, "mode": "standard"}
)
_TRANSFER = TransferConfig(multipart_threshold=64 * 1024 * 1024, max_concurrency=4)


class S3Store:
    def __init__(self, bucket: str, prefix: str):
        self.bucket = bucket
        self.prefix = prefix
        self._client = boto3.client("s3", config=_CLIENT_CONFIG)

    @property
    def endpoint(self) -> str:
        return self._client.meta.endpoint_url

    def _object(self, key: str) -> str:
        return f"{self.prefix}/{object_name(key)}" if self.prefix else object_name(key)

    def url(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._object(key)}"

    def _failure(self, action: str, error: Exception) -> CodePackagingException:
        where = f"s3://{self.bucket} at {self.endpoint}"
        kind = ErrorKind.UNAVAILABLE
        if isinstance(error, botocore.exceptions.EndpointConnectionError):
            hint = "the endpoint is unreachable; check AWS_ENDPOINT_URL_S3 and that it is running"
        elif isinstance(error, botocore.exceptions.NoCredentialsError):
            hint = (
                "no AWS credentials found; set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or a profile"
            )
        elif isinstance(error, botocore.exceptions.ClientError):
            code = error.response.get("Error", {}).get("Code", "?")
            if code == "NoSuchBucket":
                kind = ErrorKind.NOT_FOUND
            hint = {
                "NoSuchBucket": "the bucket does not exist; create it or fix the store URL",
                "AccessDenied": "access denied; check the credentials' permissions",
                "403": "access denied; check the credentials' permissions",
            }.get(code, f"the endpoint answered {code}: {error}")
        else:
            hint = str(error)
        return CodePackagingException(f"cannot {action} {where}: {hint}", kind=kind)

    def exists(self, key: str) -> bool:
        try:
            self._client.head_object(Bucket=self.bucket, Key=self._object(key))
            return True
        except botocore.exceptions.ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey"):
                return False
            raise self._failure("check for a package in", error) from error
        except botocore.exceptions.BotoCoreError as error:
            raise self._failure("check for a package in", error) from error

    def put(self, key: str, tarball: Path) -> None:
        try:
            self._client.upload_file(str(tarball), self.bucket, self._object(key), Config=_TRANSFER)
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
            raise self._failure("upload a package to", error) from error
        except boto3.exceptions.S3UploadFailedError as error:
            cause = error.__context__ if isinstance(error.__context__, Exception) else error
            raise self._failure("upload a package to", cause) from cause

    def download(self, url: str, target: Path) -> None:
        _, rest = split_url(url)
        bucket, _, name = rest.partition("/")
        try:
            self._client.download_file(bucket, name, str(target))
        except botocore.exceptions.ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey"):
                raise CodePackagingException(
                    f"no code package at {url}", kind=ErrorKind.NOT_FOUND
                ) from error
            raise self._failure("download a package from", error) from error
        except botocore.exceptions.BotoCoreError as error:
            raise self._failure("download a package from", error) from error
