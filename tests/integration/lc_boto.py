"""lc_boto.py: the boto3 client the cluster tests' scripts use for one node's endpoint.

No retries (a test counts every failure itself), path-style addressing, a 5 s connect and 30 s
read timeout; credentials from CAIRN_ACCESS_KEY and CAIRN_SECRET_KEY. body(): test bodies.
"""
import hashlib
import os

import boto3
from botocore.config import Config


def client(ep):
    return boto3.client(
        "s3", endpoint_url=ep, region_name="us-east-1",
        aws_access_key_id=os.environ["CAIRN_ACCESS_KEY"],
        aws_secret_access_key=os.environ["CAIRN_SECRET_KEY"],
        config=Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"},
                      connect_timeout=5, read_timeout=30))


def body(seed, n):
    """n deterministic pseudo-random bytes named by seed (a SHA-256 chain)."""
    out, block = bytearray(), hashlib.sha256(seed.encode()).digest()
    while len(out) < n:
        block = hashlib.sha256(block).digest()
        out += block * 32
    return bytes(out[:n])
