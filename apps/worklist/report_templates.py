"""Report templates per exam: pre-filled technique and findings skeletons the radiologist edits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.utils.translation import gettext_lazy as _

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise  # stubs-only alias: str | lazy translation


@dataclass(frozen=True)
class ReportTemplate:
    key: str
    label: StrOrPromise  # translated when shown
    modality: str
    keywords: tuple[str, ...]
    technique: str
    findings: str


TEMPLATES: tuple[ReportTemplate, ...] = (
    ReportTemplate("ct_head", _("CT head"), "CT", ("head", "brain", "crâne", "cerebral", "cérébral", "encéphal"),
                   "Helical acquisition of the head without contrast injection.",
                   "Brain parenchyma:\nVentricles and cisterns:\nExtra-axial spaces:\nBone and sinuses:"),
    ReportTemplate("ct_chest", _("CT chest / pulmonary angiography"), "CT",
                   ("chest", "thorax", "thoracique", "embol", "angio"),
                   "Helical acquisition of the chest after iodinated contrast injection, arterial phase.",
                   "Pulmonary arteries:\nLungs and pleura:\nMediastinum:\nBones:"),
    ReportTemplate("ct_abdomen", _("CT abdomen and pelvis"), "CT", ("abdo", "pelvi", "abdomen"),
                   "Helical acquisition of the abdomen and pelvis, portal venous phase.",
                   "Liver, biliary tract:\nPancreas, spleen:\nKidneys:\nBowel and peritoneum:\nVessels:\nBones:"),
    ReportTemplate("mr_brain", _("MRI brain"), "MR", ("brain", "crâne", "encéphal", "cérébral", "head"),
                   "Diffusion, FLAIR, T2*, 3D TOF sequences.",
                   "Diffusion:\nFLAIR:\nT2*:\nTOF angiography:"),
    ReportTemplate("xr_generic", _("X-ray"), "XR", (),
                   "Standard views.", "Bones and joints:\nSoft tissues:"),
    ReportTemplate("generic", _("Generic"), "", (), "", ""),
)


def template_for(modality_code: str, exam: str) -> ReportTemplate:
    text = exam.lower()
    for t in TEMPLATES:
        if t.modality == modality_code and any(k in text for k in t.keywords):
            return t
    for t in TEMPLATES:
        if t.modality == modality_code and not t.keywords:
            return t
    return TEMPLATES[-1]


def template_get(key: str) -> ReportTemplate | None:
    return next((t for t in TEMPLATES if t.key == key), None)
