"""The ``Content-Encoding`` of OTLP/HTTP bodies: gzip and deflate undone before decoding, with
the decompressed size bounded (a compression bomb is cut off at the limit)."""

from __future__ import annotations

import zlib

from tracing.ingest.otlp import OtlpDecodeError

_INFLATE_CHUNK = 256 * 1024


class BodyTooLargeError(ValueError):
    """A body (or its decompressed content) over the size limit."""


class UnsupportedEncodingError(ValueError):
    """A ``Content-Encoding`` other than gzip, deflate or identity."""


def content_codings(header: str | None) -> list[str]:
    """The codings of a ``Content-Encoding`` header, in the order they were applied.

    ``identity`` and ``none`` are dropped; anything but gzip and deflate raises
    ``UnsupportedEncodingError``.
    """
    codings = []
    for raw in (header or "").split(","):
        coding = raw.strip().lower()
        if coding in ("", "identity", "none"):
            continue
        if coding in ("gzip", "x-gzip", "deflate"):
            codings.append("deflate" if coding == "deflate" else "gzip")
            continue
        raise UnsupportedEncodingError(
            f"Content-Encoding {raw.strip()!r} is not supported; use gzip, deflate or identity"
        )
    return codings


def body_decompress(body: bytes, *, content_encoding: str | None, max_size: int) -> bytes:
    """The body with its content codings undone, never inflating past ``max_size`` bytes.

    Decompression streams in bounded chunks, so a compression bomb is cut off as soon as its
    output passes the limit (``BodyTooLargeError``); a corrupt stream raises ``OtlpDecodeError``.
    """
    for coding in reversed(content_codings(content_encoding)):
        body = _inflate(body, coding=coding, max_size=max_size)
    return body


def _inflate(data: bytes, *, coding: str, max_size: int) -> bytes:
    if coding == "gzip":
        wbits = 16 + zlib.MAX_WBITS
    elif len(data) >= 2 and data[0] & 0x0F == 8 and ((data[0] << 8) | data[1]) % 31 == 0:
        wbits = zlib.MAX_WBITS  # HTTP "deflate" is the zlib format ...
    else:
        wbits = -zlib.MAX_WBITS  # ... but some clients send raw deflate.
    chunks: list[bytes] = []
    size = 0
    pending = data
    try:
        while pending:
            inflater = zlib.decompressobj(wbits)
            while True:
                # max_length stays >= 1 here (0 would mean "no limit").
                chunk = inflater.decompress(pending, min(_INFLATE_CHUNK, max_size + 1 - size))
                size += len(chunk)
                if size > max_size:
                    raise BodyTooLargeError(
                        f"the decompressed body is larger than the limit of {max_size} bytes"
                    )
                chunks.append(chunk)
                pending = inflater.unconsumed_tail
                if inflater.eof or not (pending or chunk):
                    break
            if not inflater.eof:
                raise OtlpDecodeError(f"the {coding} body is truncated")
            # A gzip body may hold several members, one after another.
            pending = inflater.unused_data if coding == "gzip" else b""
    except zlib.error as exc:
        raise OtlpDecodeError(f"the {coding} body cannot be decompressed: {exc}") from None
    return b"".join(chunks)
