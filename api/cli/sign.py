"""``trustctl sign raw|cms FILE --signer ID``: sign a file through a signer on the host.

Acts directly on the configured database and key store as ``trustctl:<user>`` (the key
store audits the signature under that name; the HTTP equivalent is
``/v1/signers/{id}/sign`` and ``/cms``). Writes DER to --out, else base64 to stdout.
Errors exit 2.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Annotated

import typer

from api.cli.tokens import actor
from api.cli.tsa import services
from keystore import Actor, SignInput

app = typer.Typer(help="Sign a file with a signer: raw signature or CMS.", no_args_is_help=True)

FileArg = Annotated[
    Path, typer.Argument(help="the file to sign", exists=True, dir_okay=False, readable=True)
]
SignerOpt = Annotated[str, typer.Option("--signer", help="the signer's id (sgn_...)")]
OutOpt = Annotated[
    Path | None, typer.Option("--out", help="write DER here (default: base64 to stdout)")
]


def _write(der: bytes, out: Path | None) -> None:
    if out is None:
        typer.echo(base64.b64encode(der).decode())
    else:
        out.write_bytes(der)


@app.command()
def raw(
    file: FileArg,
    signer: SignerOpt,
    out: OutOpt = None,
    distinguishing_id: Annotated[
        str | None,
        typer.Option("--sm2-id", help="SM2 distinguishing ID (default 1234567812345678)"),
    ] = None,
) -> None:
    """A raw signature of FILE (GM/T 0029 SignData): SM2/ECDSA DER SEQUENCE {r, s}, RSA raw."""
    item = SignInput(
        file.read_bytes(), signer_id=distinguishing_id.encode() if distinguishing_id else None
    )
    with services() as built:
        (result,) = built.signers().sign(signer, [item], Actor(actor()))
    _write(result.signature, out)


@app.command()
def cms(
    file: FileArg,
    signer: SignerOpt,
    out: OutOpt = None,
    detached: Annotated[bool, typer.Option("--detached", help="leave FILE out")] = False,
    chain: Annotated[bool, typer.Option("--chain", help="include the signer's chain")] = False,
    timestamp: Annotated[
        bool, typer.Option("--timestamp", help="embed a signature timestamp from the TSA")
    ] = False,
    profile: Annotated[
        str | None,
        typer.Option(help="OIDs: gmt0010 (default for SM2) or rfc5652 (default otherwise)"),
    ] = None,
) -> None:
    """CMS SignedData over FILE (GM/T 0029 SignMessage)."""
    from ca.signers import CmsOptions

    options = CmsOptions(detached, chain, timestamp, profile)
    with services() as built:
        (der,) = built.signers().sign_cms(
            signer,
            [file.read_bytes()],
            options,
            Actor(actor()),
            timestamper=built.signature_timestamper(),
        )
    _write(der, out)
