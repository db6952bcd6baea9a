"""Imported key material, the AWS console's flow for a key of ``EXTERNAL`` origin: choose a
wrapping algorithm and wrapping key spec, download the wrapping public key and the import token
(``GetParametersForImport``, as a zip like AWS's ``ImportParameters.zip``), wrap the material
offline, then upload it with the token and an expiration model (``ImportKeyMaterial``). Deleting
imported material is the key page's ``delete-material`` action. Every call is made as the
signed-in principal; what the API refuses is shown in AWS's words.

Uploads are read from a multipart form within the console's body limit (``MAX_FORM_BYTES``,
answered 413 beyond it). The files go to the API as they are: their names and content types are
the browser's claims and nothing reads them, so a file that is not what it claims is refused by
``ImportKeyMaterial`` itself (a wrong token, material that does not unwrap, a size beyond AWS's
6,144 bytes).
"""

from __future__ import annotations

import base64
import calendar
import io
import time
import zipfile
from typing import Any

from openkms.console.client import ApiError
from openkms.console.keys import KEY_ID
from openkms.console.page import Page
from openkms.console.web import Response

# AWS's AlgorithmSpec and WrappingKeySpec values for GetParametersForImport; the server says
# which of them it supports (SM2 only in China's Regions on AWS).
WRAPPING_ALGORITHMS = (
    "RSAES_OAEP_SHA_256", "RSAES_OAEP_SHA_1", "RSA_AES_KEY_WRAP_SHA_256", "RSA_AES_KEY_WRAP_SHA_1",
    "SM2PKE",
)
WRAPPING_KEY_SPECS = ("RSA_2048", "RSA_3072", "RSA_4096", "SM2")
EXPIRATION_MODELS = ("KEY_MATERIAL_DOES_NOT_EXPIRE", "KEY_MATERIAL_EXPIRES")
IMPORT_TYPES = ("NEW_KEY_MATERIAL", "EXISTING_KEY_MATERIAL")

README = """Import parameters for KMS key {arn}

WrappingPublicKey.bin  the wrapping public key, DER (SubjectPublicKeyInfo), {spec}
ImportToken.bin        the import token: upload it with the wrapped key material
Wrapping algorithm     {algorithm}
Valid until            {valid_to} (then download new parameters)

Wrap 32 bytes of symmetric key material with RSAES_OAEP_SHA_256, for example:

  openssl rand -out PlaintextKeyMaterial.bin 32
  openssl pkeyutl -encrypt -in PlaintextKeyMaterial.bin -out EncryptedKeyMaterial.bin \\
    -inkey WrappingPublicKey.bin -keyform DER -pubin \\
    -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256

then upload EncryptedKeyMaterial.bin and ImportToken.bin on the key's import page.
"""


async def _describe(page: Page) -> tuple[dict[str, Any] | None, str | None]:
    try:
        answer = await page.kms("DescribeKey", {"KeyId": page.params["key_id"]})
    except ApiError as exc:
        return None, f"{exc.code}: {exc.message}"
    meta: dict[str, Any] = answer["KeyMetadata"]
    return meta, None


async def import_page(page: Page, *, status: int = 200, **extra: Any) -> Response:
    meta, error = await _describe(page)
    # An error of the action shown wins over one of reading the key again.
    values: dict[str, Any] = {"error": error} if error else {}
    values.update(extra)
    return page.render(
        "keys_import.html",
        status=400 if error and status == 200 else status,
        meta=meta,
        key_id=page.params["key_id"],
        algorithms=WRAPPING_ALGORITHMS,
        specs=WRAPPING_KEY_SPECS,
        models=EXPIRATION_MODELS,
        import_types=IMPORT_TYPES,
        form=page.request.form,
        today=time.strftime("%Y-%m-%d", time.gmtime()),
        **values,
    )


async def import_view(page: Page) -> Response:
    return await import_page(page)


async def download_parameters(page: Page) -> Response:
    """GetParametersForImport, answered as a zip of the public key, the token and a README."""
    form = page.request.form
    algorithm = form.get("algorithm", "")
    spec = form.get("spec", "")
    try:
        answer = await page.kms("GetParametersForImport", {
            "KeyId": page.params["key_id"], "WrappingAlgorithm": algorithm,
            "WrappingKeySpec": spec,
        })
    except ApiError as exc:
        return await import_page(page, status=400, error=f"{exc.code}: {exc.message}")
    valid_to = time.strftime(
        "%Y-%m-%d %H:%M:%S UTC", time.gmtime(float(answer.get("ParametersValidTo", 0)))
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("WrappingPublicKey.bin", base64.b64decode(answer["PublicKey"]))
        archive.writestr("ImportToken.bin", base64.b64decode(answer["ImportToken"]))
        archive.writestr("README.txt", README.format(
            arn=answer.get("KeyId", ""), spec=spec, algorithm=algorithm, valid_to=valid_to,
        ))
    response = Response(200, buffer.getvalue(), "application/zip")
    response.headers.append(
        ("content-disposition", 'attachment; filename="ImportParameters.zip"')
    )
    return response


def _valid_to(text: str) -> float | None:
    """A ``YYYY-MM-DD`` date as the epoch time of its start (00:00 UTC); None when empty."""
    if not text.strip():
        return None
    return float(calendar.timegm(time.strptime(text.strip(), "%Y-%m-%d")))


async def import_material(page: Page) -> Response:
    key_id = page.params["key_id"]
    form = page.request.form
    files = page.request.files
    material = files.get("material", b"")
    token = files.get("token", b"")
    if not material or not token:
        return await import_page(
            page, status=400,
            error="Choose both files: the wrapped key material and the import token.",
        )
    params: dict[str, Any] = {
        "KeyId": key_id,
        "EncryptedKeyMaterial": base64.b64encode(material).decode(),
        "ImportToken": base64.b64encode(token).decode(),
    }
    model = form.get("expiration_model", "")
    if model in EXPIRATION_MODELS:
        params["ExpirationModel"] = model
    if model == "KEY_MATERIAL_EXPIRES":
        try:
            valid_to = _valid_to(form.get("valid_to", ""))
        except ValueError:
            return await import_page(
                page, status=400, error="The expiration date is not a date (YYYY-MM-DD)."
            )
        if valid_to is not None:
            params["ValidTo"] = valid_to
    if form.get("import_type") in IMPORT_TYPES:
        params["ImportType"] = form["import_type"]
    if form.get("material_description", "").strip():
        params["KeyMaterialDescription"] = form["material_description"].strip()
    try:
        await page.kms("ImportKeyMaterial", params)
    except ApiError as exc:
        return await import_page(page, status=400, error=f"{exc.code}: {exc.message}")
    return Response.redirect(f"/console/keys/{key_id}?done=import")


ROUTES = (
    ("GET", f"/keys/{KEY_ID}/import", import_view),
    ("POST", f"/keys/{KEY_ID}/import-parameters", download_parameters),
    ("POST", f"/keys/{KEY_ID}/import", import_material),
)
