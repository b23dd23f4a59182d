"""``trustctl signers``: bind key-store keys to certificates (issued now by the service's
CA, or imported), list, show, disable and re-enable signers.

Acts directly on the configured database as ``trustctl:<user>`` with the key_admin and
ca_operator roles (the HTTP equivalent is ``/v1/signers``). Errors exit 2.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from api.cli.ca import SubjectOpt, ValidityOpt, _subject
from api.cli.tokens import actor
from api.cli.tsa import services
from keystore import Actor

if TYPE_CHECKING:
    from ca.signers import SignerInfo

app = typer.Typer(
    help="Signers: keys bound to certificates, used by trustctl sign and /v1/signers.",
    no_args_is_help=True,
)

SignerIdArg = Annotated[str, typer.Argument(help="the signer's id (sgn_...)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print one JSON document")]
_Readable = {"exists": True, "dir_okay": False, "readable": True}


def _operator() -> Actor:
    return Actor(actor(), frozenset({"key_admin", "ca_operator"}))


def _line(info: SignerInfo) -> str:
    return f"{info.id}  {info.status:8}  {info.algorithm:10}  {info.key_id}  {info.subject}"


def _show(infos: list[SignerInfo], as_json: bool, *, many: bool = False) -> None:
    if not as_json:
        for info in infos:
            typer.echo(_line(info))
        return
    from api.routers.signers import SignerModel

    models = [SignerModel.of(i).model_dump(mode="json") for i in infos]
    typer.echo(json.dumps({"signers": models} if many else models[0]))


@app.command()
def create(
    key: Annotated[str, typer.Option(help="the key store key (key_...), purpose sign or seal")],
    label: Annotated[str, typer.Option(help="a name for people")],
    ca: Annotated[str | None, typer.Option(help="issue: the CA that certifies the key")] = None,
    profile: Annotated[str, typer.Option(help="issue: certificate profile")] = "person",
    subject: SubjectOpt = None,
    san: Annotated[
        list[str] | None, typer.Option(help="issue: kind:value, e.g. email:a@b.cn (repeatable)")
    ] = None,
    validity_days: ValidityOpt = None,
    certificate: Annotated[
        Path | None, typer.Option(help="import: the key's certificate, PEM or DER", **_Readable)
    ] = None,
    chain: Annotated[
        Path | None, typer.Option(help="import: its issuers, PEM, issuer first", **_Readable)
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a signer: --ca and --subject to have the CA certify the key, or --certificate."""
    from ca.signers import CreateSignerRequest, IssueSpec

    if (ca is None) == (certificate is None):
        raise typer.BadParameter("give exactly one of --ca and --certificate")
    issue = None
    if ca is not None:
        names = _subject(subject)
        if names is None:
            raise typer.BadParameter("--ca needs --subject")
        issue = IssueSpec(ca, profile, names, san, validity_days)
    request = CreateSignerRequest(
        label,
        key,
        issue=issue,
        certificate=certificate.read_bytes() if certificate else None,
        chain=chain.read_bytes() if chain else None,
    )
    with services() as built:
        info = built.signers().create(request, _operator())
    _show([info], as_json)


@app.command("list")
def list_signers(as_json: JsonOpt = False) -> None:
    """List signers."""
    with services() as built:
        infos = built.signers().list_signers()
    _show(infos, as_json, many=True)


@app.command()
def show(signer_id: SignerIdArg, as_json: JsonOpt = False) -> None:
    """Show one signer (--json includes its certificate and chain)."""
    with services() as built:
        info = built.signers().get(signer_id)
    _show([info], as_json)


@app.command()
def disable(signer_id: SignerIdArg) -> None:
    """Refuse every use of the signer until it is enabled again."""
    with services() as built:
        info = built.signers().set_status(signer_id, "disabled", _operator())
    _show([info], False)


@app.command()
def enable(signer_id: SignerIdArg) -> None:
    """Allow a disabled signer again."""
    with services() as built:
        info = built.signers().set_status(signer_id, "active", _operator())
    _show([info], False)
