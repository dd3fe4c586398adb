"""French and English texts of the pages; French first (the default)."""

from __future__ import annotations

from collections.abc import Callable

LANGUAGES = ("fr", "en")
DEFAULT = "fr"

_T: dict[str, tuple[str, str]] = {  # key: (fr, en)
    "app.console": ("Console Parcours", "Parcours console"),
    "app.portal": ("Vos factures", "Your invoices"),
    "nav.invoices": ("Factures", "Invoices"),
    "nav.incidents": ("Incidents", "Incidents"),
    "nav.sign_out": ("Se déconnecter", "Sign out"),
    "nav.language": ("Langue", "Language"),
    "nav.skip": ("Aller au contenu", "Skip to content"),
    "login.title": ("Connexion", "Sign in"),
    "login.email": ("Adresse e-mail", "E-mail address"),
    "login.password": ("Mot de passe", "Password"),
    "login.submit": ("Se connecter", "Sign in"),
    "login.failed": ("E-mail ou mot de passe incorrect.", "Wrong e-mail or password."),
    "filters.title": ("Filtres", "Filters"),
    "filters.status": ("Statut", "Status"),
    "filters.channel": ("Canal", "Channel"),
    "filters.customer": ("Client (référence)", "Customer (reference)"),
    "filters.group": ("Groupe de clients", "Customer group"),
    "filters.due_from": ("Échéance à partir du", "Due from"),
    "filters.due_to": ("Échéance jusqu'au", "Due until"),
    "filters.incident": ("Incident", "Incident"),
    "filters.any": ("Tous", "Any"),
    "filters.open": ("Ouvert", "Open"),
    "filters.none": ("Aucun", "None"),
    "filters.apply": ("Filtrer", "Filter"),
    "filters.reset": ("Réinitialiser", "Reset"),
    "invoices.title": ("Factures", "Invoices"),
    "invoices.empty": ("Aucune facture ne correspond.", "No invoice matches."),
    "invoices.more": ("Seules les {n} plus récentes sont affichées.", "Only the {n} most recent are shown."),
    "col.number": ("Numéro", "Number"),
    "col.customer": ("Client", "Customer"),
    "col.amount": ("Montant TTC", "Amount incl. tax"),
    "col.open": ("Reste dû", "Open amount"),
    "col.due": ("Échéance", "Due date"),
    "col.status": ("Statut", "Status"),
    "col.channel": ("Canal", "Channel"),
    "col.incidents": ("Incidents", "Incidents"),
    "col.next": ("Relances", "Dunning"),
    "col.kind": ("Type", "Kind"),
    "col.opened": ("Ouvert le", "Opened"),
    "col.action": ("Action suggérée", "Suggested action"),
    "col.invoice": ("Facture", "Invoice"),
    "col.resolution": ("Résolution", "Resolution"),
    "aging.title": ("Balance âgée (reste dû)", "Aging (open amounts)"),
    "aging.not_due": ("Non échu", "Not due"),
    "aging.1_30": ("1–30 j", "1–30 d"),
    "aging.31_60": ("31–60 j", "31–60 d"),
    "aging.61_90": ("61–90 j", "61–90 d"),
    "aging.over_90": ("> 90 j", "> 90 d"),
    "delivery.title": ("Réception par canal", "Receipt by channel"),
    "delivery.sent": ("Envoyées", "Sent"),
    "delivery.proven": ("Reçues (preuve)", "Proven received"),
    "delivery.rate": ("Taux", "Rate"),
    "delivery.median": ("Délai médian (h)", "Median delay (h)"),
    "delivery.reminded": ("Relancées : {reminded}, dont payées depuis : {paid}.",
                          "Reminded: {reminded}, of which paid since: {paid}."),
    "invoice.title": ("Facture {number}", "Invoice {number}"),
    "invoice.journey": ("Parcours", "Journey"),
    "invoice.evidence": ("Preuve", "Evidence"),
    "invoice.dunning": ("Relances : la suite", "Dunning: what's next"),
    "invoice.last_reminder": ("Dernière relance : {step} (n° {sequence}, stratégie {strategy})",
                              "Last reminder: {step} (#{sequence}, strategy {strategy})"),
    "invoice.no_reminder": ("Aucune relance envoyée.", "No reminder sent yet."),
    "invoice.unknown": ("Facture inconnue.", "Unknown invoice."),
    "outlook.stopped": ("Arrêtées : {detail}.", "Stopped: {detail}."),
    "outlook.paused": ("En pause : {detail} (litige ou suspension).", "Paused: {detail} (dispute or suspension)."),
    "outlook.deferred": ("Reportées : paiement promis pour le {detail}.", "Deferred: payment promised for {detail}."),
    "outlook.waiting_proof": ("En attente d'une preuve de réception : aucune relance avant.",
                              "Waiting for proof of receipt: no reminder before it."),
    "outlook.after_step": ("En cours : prochaine étape de la stratégie après « {detail} ».",
                           "Running: the strategy's next step after “{detail}”."),
    "outlook.not_due": ("Échéance le {detail} : relances préventives selon la stratégie.",
                        "Due on {detail}: preventive reminders as the strategy says."),
    "outlook.active": ("Échue : la stratégie relance.", "Overdue: the strategy sends reminders."),
    "kind.received": ("Reçue par Parcours", "Received by Parcours"),
    "kind.unroutable": ("Aucun canal trouvé", "No channel found"),
    "kind.dispatch_requested": ("Envoi préparé", "Sending prepared"),
    "kind.dispatched": ("Envoyée", "Sent"),
    "kind.dispatch_failed": ("Échec d'envoi", "Sending failed"),
    "kind.acked": ("Accusé de réception", "Acknowledged"),
    "kind.bounced": ("Rejet du courriel", "E-mail bounced"),
    "kind.clicked": ("Consultée par une personne", "Viewed by a person"),
    "kind.reminder_due": ("Relance décidée", "Reminder due"),
    "kind.lifecycle": ("Statut", "Status"),
    "kind.payment": ("Paiement", "Payment"),
    "kind.promise": ("Promesse de paiement", "Payment promised"),
    "kind.incident_opened": ("Incident ouvert", "Incident opened"),
    "kind.incident_resolved": ("Incident résolu", "Incident resolved"),
    "kind.action_requested": ("Réponse du destinataire", "Recipient's answer"),
    "kind.resolution_requested": ("Résolution demandée", "Resolution requested"),
    "incidents.title": ("Incidents", "Incidents"),
    "incidents.empty": ("Aucun incident ouvert.", "No open incident."),
    "incidents.resolve": ("Résoudre", "Resolve"),
    "incidents.resolution": ("Résolution", "Resolution"),
    "incidents.pending": ("Résolution demandée, en cours…", "Resolution requested, in progress…"),
    "incidents.show_resolved": ("Voir les résolus", "Show resolved"),
    "incidents.show_open": ("Voir les ouverts", "Show open"),
    "portal.title": ("Vos factures de {seller}", "Your invoices from {seller}"),
    "portal.signed_in_as": ("Connecté en tant que {email}", "Signed in as {email}"),
    "portal.view": ("Voir", "View"),
    "portal.answer": ("Votre réponse", "Your answer"),
    "portal.ack": ("Accuser réception", "Acknowledge receipt"),
    "portal.approve": ("Approuver", "Approve"),
    "portal.dispute": ("Contester", "Dispute"),
    "portal.reason": ("Motif", "Reason"),
    "portal.attachment": ("Pièce jointe (facultative, PDF ou image, 5 Mo max.)",
                          "Attachment (optional, PDF or image, 5 MB max.)"),
    "portal.promise": ("Promettre une date de paiement", "Promise a payment date"),
    "portal.promised_on": ("Date de paiement promise", "Promised payment date"),
    "portal.sent": ("Merci, votre réponse a été transmise.", "Thank you, your answer was sent."),
    "portal.history": ("Vos réponses", "Your answers"),
    "portal.link_invalid": ("Ce lien n'est pas valide ou a expiré.", "This link is not valid or has expired."),
    "portal.not_ready": ("Cette facture n'est pas encore disponible ; réessayez dans un instant.",
                         "This invoice is not available yet; try again in a moment."),
    "action.taken_over": ("Réception accusée", "Receipt acknowledged"),
    "action.approved": ("Approuvée", "Approved"),
    "action.disputed": ("Contestée", "Disputed"),
    "action.promise_to_pay": ("Paiement promis", "Payment promised"),
    "field.required": ("Ce champ est obligatoire.", "This field is required."),
    "field.date_past": ("La date doit être aujourd'hui ou plus tard.", "The date must be today or later."),
    "field.too_large": ("Fichier trop volumineux.", "File too large."),
    "field.bad_type": ("Type de fichier non accepté.", "File type not accepted."),
    "error.title": ("Erreur", "Error"),
    "error.forbidden": ("Vous n'avez pas le droit de faire cela.", "You are not allowed to do that."),
    "error.form": ("Le formulaire a expiré ; rechargez la page.", "The form expired; reload the page."),
    "error.not_found": ("Introuvable.", "Not found."),
    "error.documents_unavailable": ("Le document n'est pas disponible pour le moment.",
                                    "The document is not available at the moment."),
    "doc.pdf": ("Télécharger le PDF", "Download the PDF"),
    "seller": ("Émetteur", "Seller"),
    "issue_date": ("Date d'émission", "Issue date"),
}


def translator(language: str) -> Callable[..., str]:
    index = LANGUAGES.index(language) if language in LANGUAGES else 0

    def t(key: str, **values) -> str:
        text = _T[key][index] if key in _T else key
        return text.format(**values) if values else text

    return t


def pick_language(chosen: str | None, accept_language: str | None) -> str:
    """The language the visitor chose (cookie), else the first known one of Accept-Language, else French."""
    if chosen in LANGUAGES:
        return chosen
    for part in (accept_language or "").split(","):
        tag = part.split(";")[0].strip().lower()[:2]
        if tag in LANGUAGES:
            return tag
    return DEFAULT
