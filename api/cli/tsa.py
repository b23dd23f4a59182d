"""``trustctl tsa``: list and rotate the time-stamp units, set their policy, stamp a file,
verify a token.

Acts directly on the configured database and key store, as the API workers do (unit
keys belong to the ``tsa-service`` principal; rotations are audited under
``trustctl:<user>``). Errors exit 2; ``verify`` exits 1 when the token does not verify.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from api.cli.keys import EXIT_ERROR
from api.cli.tokens import actor
from trust.errors import TrustError

if TYPE_CHECKING:
    from api.deps import Services
    from timestamp.registry import UnitRecord

app = typer.Typer(
    help="Time-stamp units: list, rotate, set a policy, stamp a file, verify a token.",
    no_args_is_help=True,
)

UnitOpt = Annotated[str | None, typer.Option("--unit", help="unit name (default: the default)")]
_Readable = {"exists": True, "dir_okay": False, "readable": True}


@contextmanager
def services() -> Iterator[Services]:
    """The service objects over the configured store; TrustErrors exit 2."""
    # Imported here so that `trustctl --help` does not load the storage stack.
    from api.deps import build_services
    from trust import migrations
    from trust.keys import configure_sm2_backend
    from trust.settings import get_settings

    try:
        settings = get_settings()
        configure_sm2_backend(settings.sm2_backend, settings.libcrypto_path)
        built = build_services(settings)
        try:
            migrations.check_current(built.database)
            yield built
        finally:
            built.close()
    except TrustError as exc:
        typer.echo(f"error ({exc.code}): {exc.detail}", err=True)
        raise typer.Exit(EXIT_ERROR) from None


def _line(record: UnitRecord) -> str:
    from asn1crypto import x509

    cert = x509.Certificate.load(record.certificate)
    return (
        f"{record.name:8} gen {record.generation}  {record.state:7}  policy {record.policy}  "
        f"cert {format(cert.serial_number, 'x')}  key {record.key_id}  "
        f"until {cert.not_valid_after.isoformat()}"
    )


def ensure_default_units() -> None:
    """``trustctl init``: the units ``sm2`` and ``ecdsa``, made once (policies from the
    settings), and a note for each policy still under the placeholder arc."""
    from timestamp.provision import PLACEHOLDER_ARC
    from timestamp.provision import ensure_default_units as ensure

    with services() as built:
        results = ensure(built.tsa_units(), built.ca(), built.settings)
    for record, created in results:
        typer.echo(f"{'created ' if created else 'existing'} TSA unit {_line(record)}")
        if record.policy.startswith(PLACEHOLDER_ARC):
            typer.echo(
                f"note: policy {record.policy} of unit {record.name} is a placeholder (ITU-T "
                f"example arc); set your TSA policy OID with "
                f"`trustctl tsa policy {record.name} OID`",
                err=True,
            )


@app.command("units")
def units(
    include_retired: Annotated[
        bool, typer.Option("--all", help="also rotated-away generations")
    ] = False,
    chain: Annotated[bool, typer.Option("--pem", help="print each certificate chain")] = False,
) -> None:
    """List the TSA units."""
    with services() as built:
        records = built.tsa_units().store.list(include_retired=include_retired)
    for record in records:
        typer.echo(_line(record))
        if chain:
            typer.echo(record.chain_pem, nl=False)


@app.command("rotate")
def rotate(name: Annotated[str, typer.Argument(help="unit name, e.g. sm2")]) -> None:
    """Give a unit a new key and certificate; tokens issued before keep verifying, and
    running workers switch within tsa_unit_refresh_seconds."""
    with services() as built:
        record = built.tsa_units().rotate(name, actor=actor())
    typer.echo(f"rotated  TSA unit {_line(record)}")


@app.command("policy")
def policy(
    name: Annotated[str, typer.Argument(help="unit name, e.g. sm2")],
    oid: Annotated[str, typer.Argument(help="the TSA policy OID, dotted, e.g. 1.2.156.x.y")],
) -> None:
    """Set a unit's TSA policy: its tokens name it, and requests must name it or none.
    Running workers switch within tsa_unit_refresh_seconds."""
    with services() as built:
        record = built.tsa_units().set_policy(name, oid, actor=actor())
    typer.echo(f"policy   TSA unit {_line(record)}")


@app.command("stamp")
def stamp(
    file: Annotated[Path, typer.Argument(**_Readable, help="the file to time-stamp")],
    unit: UnitOpt = None,
    hash_algorithm: Annotated[
        str, typer.Option("--hash", help="sm3, sha256, sha384 or sha512")
    ] = "sm3",
    out: Annotated[
        Path | None, typer.Option("--out", help="token file (default: FILE.tst)")
    ] = None,
) -> None:
    """Time-stamp FILE; writes the DER TimeStampToken."""
    from trust.cms.algorithms import DIGEST_OIDS, digest

    if hash_algorithm not in DIGEST_OIDS:
        typer.echo(f"error: unknown hash algorithm {hash_algorithm}", err=True)
        raise typer.Exit(EXIT_ERROR)
    target = out or file.with_name(file.name + ".tst")
    imprint = digest(hash_algorithm, file.read_bytes())
    with services() as built:
        issued = built.tsa().issue(hash_algorithm, imprint, unit=unit)
    target.write_bytes(issued.token)
    typer.echo(
        f"token {issued.serial_hex} from unit {issued.unit} at "
        f"{issued.gen_time.isoformat()} written to {target}"
    )


@app.command("verify")
def verify(
    token: Annotated[
        Path, typer.Argument(**_Readable, help="TimeStampToken or TimeStampResp, DER")
    ],
    data: Annotated[Path, typer.Option("--data", **_Readable, help="the stamped file")],
) -> None:
    """Verify a token against FILE: signature, ESS binding, EKU, imprint, and whether one
    of this service's units (any generation) issued it. Exit 0 if it verifies, else 1."""
    from timestamp import parse_response, verify_token
    from trust.errors import MalformedASN1

    raw = token.read_bytes()
    try:
        try:
            result = verify_token(raw, data=data.read_bytes())
        except MalformedASN1:  # perhaps a whole reply (openssl ts -reply -out)
            inner = parse_response(raw).token
            if inner is None:
                raise
            result = verify_token(inner, data=data.read_bytes())
    except TrustError as exc:
        typer.echo(f"error ({exc.code}): {exc.detail}", err=True)
        raise typer.Exit(EXIT_ERROR) from None
    with services() as built:
        records = built.tsa_units().store.list(include_retired=True)
    signer = result.signer_certificate.dump() if result.signer_certificate else None
    issuer = next((r for r in records if r.certificate == signer), None)
    typer.echo(f"serial     {result.serial_hex}")
    typer.echo(f"gen_time   {result.gen_time.isoformat()}")
    typer.echo(f"policy     {result.policy}")
    typer.echo(f"imprint    {result.hash_algorithm} {result.imprint.hex()}")
    typer.echo(
        f"unit       {issuer.name} generation {issuer.generation} ({issuer.state})"
        if issuer
        else "unit       not one of this service's units"
    )
    for problem in result.problems:
        typer.echo(f"problem    {problem}")
    ok = result.ok and issuer is not None
    typer.echo(f"verdict    {'OK' if ok else 'FAILED'}")
    raise typer.Exit(0 if ok else 1)
