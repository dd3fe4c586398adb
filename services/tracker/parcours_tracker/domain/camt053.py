"""Bank statements in ISO 20022 camt.053 (BankToCustomerStatement, versions 001.02 to 001.13):
the credit lines they hold, and what each quotes to say which invoice it pays. No IO.

A statement is untrusted XML: parsed with no DTD (so no entities, XXE or entity bombs), no
network, no huge-tree mode, bounded depth. Elements are read by local name, so every version's
namespace works; the differences between versions that matter here (`Sts` as a code or as
`Sts/Cd`, a transaction's amount in `AmtDtls/TxAmt/Amt` or `Amt`) are both read.

One line per transaction (`Ntry/NtryDtls/TxDtls`), or the entry itself when it has none. Only
booked credits are payments; debits, pending or informational entries and reversals are
listed as ignored."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation

from lxml import etree

from parcours_tracker.domain.payments import number_key

NAMESPACE_PREFIX = "urn:iso:std:iso:20022:tech:xsd:camt.053.001."
MAX_DEPTH = 64  # a statement nests about 12 deep
MAX_LINES = 10_000
_RF = re.compile(r"RF(\d{2})([0-9A-Z]{1,21})")
_WORDS = re.compile(r"[\s,;:()\[\]]+")
_MAX_JOINED = 4  # "F 2026 102" quotes F2026102
_NOT_PROVIDED = "NOTPROVIDED"


class StatementError(Exception):
    """Not a camt.053 statement we can read; `status` 400 (not XML) or 422 (refused or not camt.053)."""

    def __init__(self, status: int, slug: str, detail: str, pointer: str = ""):
        super().__init__(detail)
        self.status, self.slug, self.detail, self.pointer = status, slug, detail, pointer


@dataclass(frozen=True)
class Line:
    """One movement of a statement, and everything it quotes that may identify an invoice."""

    position: str  # "<statement>/<entry>/<transaction>", 1-based: where to find it in the file
    amount: Decimal
    currency: str
    credit: bool
    booked: bool
    reversal: bool
    booked_on: date | None
    bank_reference: str | None  # the bank's own id of the transaction (or of its entry)
    end_to_end_id: str | None
    creditor_references: tuple[str, ...] = ()  # structured (Strd/CdtrRefInf/Ref), e.g. an RF reference
    remittance: tuple[str, ...] = ()  # unstructured texts (Ustrd)
    debtor: str | None = None

    @property
    def payment(self) -> bool:
        """Whether it is money received: a booked credit that is not a reversal."""
        return self.credit and self.booked and not self.reversal

    def reference_keys(self) -> list[str]:
        """Number keys of the structured creditor references: an RF reference's payload, and the whole one."""
        keys: list[str] = []
        for reference in self.creditor_references:
            compact = number_key(reference)
            if (rf := _RF.fullmatch(compact)) and rf_valid(compact):
                keys.append(rf.group(2))
            keys.append(compact)
        return keys

    def quoted_keys(self) -> list[str]:
        """Number keys this line quotes, most telling first: creditor references, the end-to-end id,
        then each free text whole, word by word, and by runs of up to four words."""
        keys = self.reference_keys()
        if self.end_to_end_id and self.end_to_end_id.upper() != _NOT_PROVIDED:
            keys.append(number_key(self.end_to_end_id))
        for text in self.remittance:
            keys.append(number_key(text))
            words = [number_key(word) for word in _WORDS.split(text)]
            keys += ["".join(words[i:i + n]) for n in range(1, _MAX_JOINED + 1) for i in range(len(words) - n + 1)]
        return list(dict.fromkeys(key for key in keys if len(key) >= 3))


@dataclass
class Statement:
    message_id: str
    statements: list[str] = field(default_factory=list)  # each Stmt/Id
    account: str | None = None  # IBAN (or other id) of the first statement's account
    lines: list[Line] = field(default_factory=list)


def rf_valid(reference: str) -> bool:
    """ISO 11649 creditor reference check digits (mod 97 of the payload + 'RF' + check digits)."""
    rearranged = reference[4:] + reference[:4]
    digits = "".join(str(int(char, 36)) for char in rearranged)
    return int(digits) % 97 == 1


def rf_reference(payload: str) -> str:
    """The ISO 11649 creditor reference of `payload` (letters and digits), e.g. for an invoice number."""
    body = number_key(payload)
    check = 98 - int("".join(str(int(char, 36)) for char in body + "RF00")) % 97
    return f"RF{check:02d}{body}"


def _parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False,
                           dtd_validation=False, remove_pis=True, remove_comments=True, collect_ids=False)


def _refuse_unsafe(raw: bytes) -> None:
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise StatementError(422, "unsafe-xml", "Statements must be encoded in UTF-8.")
    if b"<!DOCTYPE" in raw or b"<!ENTITY" in raw:
        raise StatementError(422, "unsafe-xml", "XML with a DTD (<!DOCTYPE> or <!ENTITY>) is refused.")


def _child(element, *path: str):
    for name in path:
        if element is None:
            return None
        element = element.find(f"{{*}}{name}")
    return element


def _text(element, *path: str) -> str | None:
    found = _child(element, *path)
    if found is None or found.text is None:
        return None
    return found.text.strip() or None


def _where(element) -> str:
    return "/" + "/".join(etree.QName(e).localname for e in reversed([element, *element.iterancestors()]))


def _amount(element) -> tuple[Decimal, str]:
    try:
        value = Decimal(element.text.strip())
    except (AttributeError, InvalidOperation):
        raise StatementError(422, "invalid-statement", "An amount is not a decimal number.", _where(element)) from None
    currency = element.get("Ccy", "")
    if not re.fullmatch(r"[A-Z]{3}", currency) or value < 0 or value.as_tuple().exponent < -5:
        raise StatementError(422, "invalid-statement", "An amount needs a currency (Ccy) and a positive value.",
                             _where(element))
    return value, currency


def _date(element, *path: str) -> date | None:
    raw = _text(element, *path, "Dt") or (_text(element, *path, "DtTm") or "")[:10]
    try:
        return date.fromisoformat(raw) if raw else None
    except ValueError:
        raise StatementError(422, "invalid-statement", f"Not a date: {raw[:40]!r}.", _where(_child(element, *path)))


def _line(position: str, entry, tx) -> Line:
    amount_element = None
    if tx is not None:
        amount_element = _child(tx, "AmtDtls", "TxAmt", "Amt")
        amount_element = amount_element if amount_element is not None else _child(tx, "Amt")
    if amount_element is None:
        amount_element = _child(entry, "Amt")
    if amount_element is None:
        raise StatementError(422, "invalid-statement", "An entry has no amount.", _where(entry))
    amount, currency = _amount(amount_element)
    status = _text(entry, "Sts", "Cd") or _text(entry, "Sts") or ""
    indicator = (tx is not None and _text(tx, "CdtDbtInd")) or _text(entry, "CdtDbtInd")
    source = tx if tx is not None else entry
    remittance = _child(source, "RmtInf")
    creditor_refs = tuple(ref.text.strip() for ref in (remittance.iterfind(".//{*}CdtrRefInf/{*}Ref")
                                                       if remittance is not None else ()) if ref.text)
    texts = tuple(u.text.strip() for u in (remittance.iterfind("{*}Ustrd") if remittance is not None else ())
                  if u.text and u.text.strip())
    if tx is None:  # an entry without details may still quote something
        texts += tuple(t for t in (_text(entry, "AddtlNtryInf"),) if t)
    debtor = _text(source, "RltdPties", "Dbtr", "Nm") or _text(source, "RltdPties", "Dbtr", "Pty", "Nm")
    bank_reference = (tx is not None and _text(tx, "Refs", "AcctSvcrRef")) or _text(entry, "AcctSvcrRef") \
        or _text(entry, "NtryRef")
    return Line(position=position, amount=amount, currency=currency, credit=indicator == "CRDT",
                booked=status.upper() == "BOOK", reversal=(_text(entry, "RvslInd") or "").lower() == "true",
                booked_on=_date(entry, "BookgDt") or _date(entry, "ValDt"), bank_reference=bank_reference,
                end_to_end_id=_text(tx, "Refs", "EndToEndId") if tx is not None else None,
                creditor_references=creditor_refs, remittance=texts, debtor=debtor)


def _depth(root) -> int:
    deepest = depth = 0
    for event, _ in etree.iterwalk(root, events=("start", "end")):
        depth += 1 if event == "start" else -1
        deepest = max(deepest, depth)
    return deepest


def parse_statement(raw: bytes) -> Statement:
    """The lines of a camt.053 message; StatementError when it is not one (or not safe to read)."""
    _refuse_unsafe(raw)
    try:
        root = etree.fromstring(raw, _parser())
    except etree.XMLSyntaxError as exc:
        raise StatementError(400, "malformed-xml", f"The body is not well-formed XML: {exc}") from None
    if root.getroottree().docinfo.doctype:
        raise StatementError(422, "unsafe-xml", "XML with a DTD is refused.")
    name = etree.QName(root)
    message = _child(root, "BkToCstmrStmt")
    if name.localname != "Document" or not (name.namespace or "").startswith(NAMESPACE_PREFIX) or message is None:
        raise StatementError(422, "not-camt053", "The document is not an ISO 20022 camt.053 BankToCustomerStatement "
                                                 f"(root {root.tag}).", "/" + name.localname)
    if _depth(root) > MAX_DEPTH:
        raise StatementError(422, "unsafe-xml", f"The XML is nested deeper than {MAX_DEPTH} levels.")
    statement = Statement(message_id=_text(message, "GrpHdr", "MsgId") or "")
    for s, stmt in enumerate(message.iterfind("{*}Stmt"), start=1):
        statement.statements.append(_text(stmt, "Id") or "")
        if statement.account is None:
            statement.account = _text(stmt, "Acct", "Id", "IBAN") or _text(stmt, "Acct", "Id", "Othr", "Id")
        for e, entry in enumerate(stmt.iterfind("{*}Ntry"), start=1):
            details = list(entry.iterfind("{*}NtryDtls/{*}TxDtls"))
            for t, tx in enumerate(details or [None], start=1):
                statement.lines.append(_line(f"{s}/{e}/{t}", entry, tx))
                if len(statement.lines) > MAX_LINES:
                    raise StatementError(422, "statement-too-large", f"A statement holds at most {MAX_LINES} lines.")
    if not statement.statements:
        raise StatementError(422, "invalid-statement", "The message holds no statement (Stmt).", "/Document/BkToCstmrStmt")
    return statement
