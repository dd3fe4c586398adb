"""What French law requires an invoice between businesses to state beyond its amounts (Code de
commerce L441-9, L441-10, D441-5): the late-payment penalty rate, the 40 € fixed recovery
indemnity, and the early-payment discount terms. Pure; the wording per language."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Language = Literal["fr", "en"]

DEFAULT_PENALTY_RATE = {
    "fr": "taux de refinancement de la BCE majoré de 10 points",
    "en": "the ECB refinancing rate plus 10 percentage points",
}


@dataclass(frozen=True)
class LegalMentions:
    """The mentions printed on the PDF and written as CII notes (UNTDID 4451 subjects PMT, PMD, AAB)."""

    language: Language = "fr"
    penalty_rate: str | None = None  # e.g. "12 % par an"; the legal default (ECB + 10 points) otherwise
    recovery_indemnity_eur: int = 40
    early_payment_discount: str | None = None  # "none" unless the tenant grants one

    def penalty_text(self) -> str:
        rate = self.penalty_rate or DEFAULT_PENALTY_RATE[self.language]
        if self.language == "fr":
            return (f"En cas de retard de paiement, pénalités au {rate} (art. L441-10 du Code de commerce), "
                    "exigibles dès le lendemain de l'échéance.")
        return f"Late payment incurs penalties at {rate} (French Commercial Code, art. L441-10), from the day after the due date."

    def indemnity_text(self) -> str:
        if self.language == "fr":
            return (f"Indemnité forfaitaire pour frais de recouvrement due en cas de retard : "
                    f"{self.recovery_indemnity_eur} € (art. D441-5 du Code de commerce).")
        return (f"A fixed indemnity of {self.recovery_indemnity_eur} € for recovery costs is due on late payment "
                "(French Commercial Code, art. D441-5).")

    def discount_text(self) -> str:
        if self.early_payment_discount:
            return self.early_payment_discount
        return "Pas d'escompte pour paiement anticipé." if self.language == "fr" else "No discount for early payment."

    def notes(self) -> list[tuple[str, str]]:
        return [("PMT", self.penalty_text()), ("PMD", self.indemnity_text()), ("AAB", self.discount_text())]
