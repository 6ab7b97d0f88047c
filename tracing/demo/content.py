"""What the demo data talks about: Lumio, a made-up smart-lighting company, and its support bot.

A knowledge base (for RAG traces), the questions customers ask about it with the answers the
bot gives, and the account tasks the support agent handles with tools (for agent traces).
Everything here is fixed text; ``tracing.demo.generate`` picks from it with a seeded RNG.

Longer than 500 lines because it is data, not logic: splitting the text would only scatter it.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

SYSTEM_PROMPT_RAG = (
    "You are Lumio's customer support assistant. Answer the customer's question using only the "
    "context below. If the context does not contain the answer, say you don't know and offer to "
    "open a support ticket. Be concise and friendly.\n\nContext:\n{context}"
)
SYSTEM_PROMPT_AGENT = (
    "You are Lumio's customer support agent. You can look up orders, subscriptions, billing and "
    "devices with the tools provided. Always check the customer's data with a tool before "
    "answering account questions. Never promise refunds, credits or dates the tools did not "
    "confirm."
)


@dataclass(frozen=True, slots=True)
class Document:
    id: str
    title: str
    url: str
    content: str


DOCUMENTS: tuple[Document, ...] = (
    Document(
        "kb-101",
        "Factory reset the Lumio Hub",
        "https://help.lumio.example/hub/factory-reset",
        "To factory reset the Lumio Hub, hold the reset button on the back for 10 seconds until "
        "the ring light blinks orange, then release it. The hub restarts in about a minute and "
        "all rooms, schedules and paired bulbs are removed.",
    ),
    Document(
        "kb-102",
        "Hub status lights",
        "https://help.lumio.example/hub/status-lights",
        "A solid white ring means the hub is online. A blinking orange ring means the hub lost "
        "its Wi-Fi connection; it retries every 30 seconds. A solid red ring means a firmware "
        "update failed; unplug the hub for 10 seconds to retry the update.",
    ),
    Document(
        "kb-103",
        "Wi-Fi requirements",
        "https://help.lumio.example/hub/wifi",
        "The Lumio Hub connects to 2.4 GHz Wi-Fi networks only (802.11 b/g/n). 5 GHz-only "
        "networks are not supported. WPA2 and WPA3 personal security are supported; enterprise "
        "(802.1X) networks are not.",
    ),
    Document(
        "kb-104",
        "How many devices a hub supports",
        "https://help.lumio.example/hub/limits",
        "One Lumio Hub controls up to 50 devices (bulbs, strips, switches and sensors). For more "
        "devices, add a second hub to the same home; the app combines them automatically.",
    ),
    Document(
        "kb-105",
        "Using bulbs without a hub",
        "https://help.lumio.example/bulbs/bluetooth-mode",
        "Lumio bulbs work without a hub in Bluetooth mode. Bluetooth mode supports up to 10 "
        "bulbs, control from a phone within about 10 metres, and no schedules, away mode or "
        "voice assistants.",
    ),
    Document(
        "kb-106",
        "Flickering when dimmed",
        "https://help.lumio.example/bulbs/flicker",
        "Lumio bulbs flicker when they are wired behind a traditional (TRIAC) dimmer switch. Set "
        "the wall dimmer to full brightness and dim from the app, or replace the dimmer with a "
        "Lumio Smart Switch.",
    ),
    Document(
        "kb-107",
        "Firmware updates",
        "https://help.lumio.example/hub/firmware",
        "Firmware updates install automatically between 2 and 4 a.m. local time. To update now, "
        "open Settings > Hub > Firmware and tap Update. Bulbs update through the hub, one at a "
        "time; lights may blink once during an update.",
    ),
    Document(
        "kb-108",
        "Apple Home, Alexa and Google Home",
        "https://help.lumio.example/integrations/voice",
        "Lumio works with Apple Home through Matter, with Amazon Alexa through the Lumio skill and "
        "with Google Home through the Lumio action. A Lumio Hub is required for all three. Link "
        "them in Settings > Integrations.",
    ),
    Document(
        "kb-109",
        "Schedules and scenes",
        "https://help.lumio.example/app/schedules",
        "Create a schedule in the app under Automations > New schedule: choose the lights, a "
        "scene and the days and time. Sunrise and sunset times follow your home's location. "
        "Schedules run on the hub, so they work even if your phone is off.",
    ),
    Document(
        "kb-110",
        "Sharing your home",
        "https://help.lumio.example/app/members",
        "Invite up to 8 members to your home from Settings > Home > Members. Members can control "
        "lights and scenes; only the owner can add devices, change billing or delete the home.",
    ),
    Document(
        "kb-201",
        "Return policy",
        "https://help.lumio.example/orders/returns",
        "New products can be returned within 30 days of delivery if they are in their original "
        "packaging. Refurbished products can be returned within 14 days. Refunds go back to the "
        "original payment method within 5 to 10 business days after we receive the return.",
    ),
    Document(
        "kb-202",
        "Warranty",
        "https://help.lumio.example/orders/warranty",
        "Lumio hardware has a 2-year limited warranty from the delivery date. Lumio Plus members "
        "get a 3-year warranty on devices bought while subscribed. The warranty covers defects, "
        "not water damage or damage from incorrect wiring.",
    ),
    Document(
        "kb-203",
        "Shipping destinations and times",
        "https://help.lumio.example/orders/shipping",
        "We ship to the United States, Canada, the United Kingdom and the European Union. "
        "Standard shipping takes 3 to 5 business days in the US and 5 to 8 elsewhere. Orders "
        "outside the US may be charged import duties by the carrier.",
    ),
    Document(
        "kb-204",
        "Changing or cancelling an order",
        "https://help.lumio.example/orders/change",
        "You can change the shipping address or cancel an order until it ships, from Orders in "
        "your account. Once an order has shipped it cannot be changed; you can return it after "
        "delivery instead.",
    ),
    Document(
        "kb-205",
        "Damaged or missing items",
        "https://help.lumio.example/orders/damaged",
        "If an item arrives damaged or is missing, contact support within 7 days of delivery. "
        "We send a free replacement, or a refund if the item is out of stock, without requiring "
        "the damaged item back.",
    ),
    Document(
        "kb-301",
        "What Lumio Plus includes",
        "https://help.lumio.example/plus/features",
        "Lumio Plus ($4.99/month or $49/year) adds away mode, energy reports, 90 days of activity "
        "history (instead of 7), priority support and a 3-year device warranty.",
    ),
    Document(
        "kb-302",
        "Cancelling Lumio Plus",
        "https://help.lumio.example/plus/cancel",
        "Cancel Lumio Plus at any time in Settings > Subscription. Monthly plans stay active "
        "until the end of the paid month. Annual plans cancelled within 14 days of renewal are "
        "refunded in full; after that they stay active until the end of the year.",
    ),
    Document(
        "kb-303",
        "Billing date and payment methods",
        "https://help.lumio.example/plus/billing",
        "Your billing date is the day you subscribed. To change it, switch between monthly and "
        "annual billing; the new plan starts immediately and the unused time is credited. We "
        "accept Visa, Mastercard, American Express and PayPal.",
    ),
    Document(
        "kb-304",
        "Pending charges",
        "https://help.lumio.example/plus/pending-charges",
        "When you update a card, your bank may show a temporary authorization of $1.00 or of the "
        "plan price. Authorizations are not charges and disappear within 3 to 5 business days.",
    ),
    Document(
        "kb-401",
        "Where your data is stored",
        "https://help.lumio.example/privacy/data-residency",
        "Accounts created in the EU and UK are stored in our Frankfurt region; all other "
        "accounts are stored in Oregon, US. Activity history is kept for 7 days (90 days with "
        "Lumio Plus) and then deleted.",
    ),
    Document(
        "kb-402",
        "Deleting your account",
        "https://help.lumio.example/privacy/delete-account",
        "Delete your account in Settings > Account > Delete account. Your homes, devices and "
        "history are deleted within 30 days. An active Lumio Plus subscription is cancelled "
        "without a refund.",
    ),
    Document(
        "kb-501",
        "Lumio Strip Outdoor",
        "https://help.lumio.example/products/strip-outdoor",
        "The Lumio Strip Outdoor is rated IP65: protected against dust and water jets, but not "
        "for submersion. It is 5 metres long, can be cut every 10 cm, and needs the included "
        "weatherproof power supply.",
    ),
    Document(
        "kb-502",
        "Lumio Bulb A19 specifications",
        "https://help.lumio.example/products/bulb-a19",
        "The Lumio Bulb A19 gives 1100 lumens (75 W equivalent) at 9.5 W, 16 million colours and "
        "whites from 2000 K to 6500 K, and is rated for 25,000 hours. It is not for enclosed "
        "outdoor fixtures.",
    ),
    Document(
        "kb-503",
        "Lumio Motion Sensor",
        "https://help.lumio.example/products/motion-sensor",
        "The Lumio Motion Sensor runs for about 2 years on two AAA batteries, detects motion up "
        "to 5 metres away at 120 degrees, and can turn lights on only after sunset.",
    ),
)
DOCUMENTS_BY_ID = {doc.id: doc for doc in DOCUMENTS}


@dataclass(frozen=True, slots=True)
class KnowledgeQuestion:
    """A question the knowledge base answers, the documents that answer it, and the answer."""

    question: str
    documents: tuple[str, ...]
    answer: str


KNOWLEDGE_QUESTIONS: tuple[KnowledgeQuestion, ...] = (
    KnowledgeQuestion(
        "How do I reset my Lumio hub to factory settings?",
        ("kb-101",),
        "Hold the reset button on the back of the hub for 10 seconds until the ring light blinks "
        "orange, then let go. The hub restarts in about a minute. Note that this removes all "
        "rooms, schedules and paired bulbs.",
    ),
    KnowledgeQuestion(
        "my hub is blinking orange, what does that mean?",
        ("kb-102", "kb-103"),
        "A blinking orange ring means the hub has lost its Wi-Fi connection; it retries every 30 "
        "seconds. Check that your router is on and broadcasting a 2.4 GHz network, since the hub "
        "can't use 5 GHz-only networks.",
    ),
    KnowledgeQuestion(
        "Does the hub work with 5GHz wifi?",
        ("kb-103",),
        "No. The Lumio Hub only connects to 2.4 GHz Wi-Fi (802.11 b/g/n). If your router "
        "combines bands under one name, it usually works; 5 GHz-only networks are not supported.",
    ),
    KnowledgeQuestion(
        "How many bulbs can one hub control?",
        ("kb-104",),
        "One hub controls up to 50 devices, counting bulbs, strips, switches and sensors. If you "
        "need more, add a second hub to the same home and the app combines them.",
    ),
    KnowledgeQuestion(
        "Can I use the bulbs without buying the hub?",
        ("kb-105",),
        "Yes, in Bluetooth mode: up to 10 bulbs, controlled from your phone within about 10 "
        "metres. Schedules, away mode and voice assistants need a hub.",
    ),
    KnowledgeQuestion(
        "Why do my lights flicker when I dim them?",
        ("kb-106",),
        "That happens when the bulbs are behind a traditional dimmer switch. Set the wall dimmer "
        "to full brightness and dim from the app instead, or swap it for a Lumio Smart Switch.",
    ),
    KnowledgeQuestion(
        "How do I update the firmware on my hub?",
        ("kb-107",),
        "Updates install automatically between 2 and 4 a.m. To update right away, open Settings "
        "> Hub > Firmware and tap Update. Your lights may blink once while bulbs update.",
    ),
    KnowledgeQuestion(
        "Does Lumio work with Apple HomeKit?",
        ("kb-108",),
        "Yes, through Matter. You need a Lumio Hub; then link Apple Home in Settings > "
        "Integrations.",
    ),
    KnowledgeQuestion(
        "Can I control my lights with Alexa?",
        ("kb-108",),
        "Yes. Enable the Lumio skill in the Alexa app and link it from Settings > Integrations. "
        "A Lumio Hub is required.",
    ),
    KnowledgeQuestion(
        "How do I make the lights turn on at sunset every day?",
        ("kb-109",),
        "Go to Automations > New schedule, pick the lights and a scene, and choose Sunset as the "
        "time. Sunset follows your home's location, and the schedule runs on the hub even when "
        "your phone is off.",
    ),
    KnowledgeQuestion(
        "How can my partner control the lights too?",
        ("kb-110",),
        "Invite them from Settings > Home > Members; you can add up to 8 members. Members can "
        "control lights and scenes, while adding devices and billing stay with you as the owner.",
    ),
    KnowledgeQuestion(
        "What's your return policy?",
        ("kb-201",),
        "You can return new products within 30 days of delivery in their original packaging "
        "(14 days for refurbished). Refunds reach your original payment method 5 to 10 business "
        "days after we receive the return.",
    ),
    KnowledgeQuestion(
        "How long is the warranty on the hub?",
        ("kb-202",),
        "The hub has a 2-year limited warranty from delivery, or 3 years if you bought it while "
        "subscribed to Lumio Plus. It covers defects, not water damage or wiring mistakes.",
    ),
    KnowledgeQuestion(
        "Do you ship to Germany?",
        ("kb-203",),
        "Yes, we ship to the EU, including Germany. Standard shipping takes 5 to 8 business "
        "days, and the carrier may charge import duties.",
    ),
    KnowledgeQuestion(
        "Can I still change my order after I placed it?",
        ("kb-204",),
        "Yes, until it ships: go to Orders in your account to change the address or cancel. Once "
        "it has shipped it can't be changed, but you can return it after delivery.",
    ),
    KnowledgeQuestion(
        "One of the bulbs in my pack arrived cracked. What do I do?",
        ("kb-205",),
        "Sorry about that! Contact us within 7 days of delivery and we'll send a free "
        "replacement (or refund it if it's out of stock). You don't need to send the broken bulb "
        "back.",
    ),
    KnowledgeQuestion(
        "What do I get with Lumio Plus?",
        ("kb-301",),
        "Lumio Plus ($4.99/month or $49/year) adds away mode, energy reports, 90 days of "
        "activity history, priority support and a 3-year warranty on devices.",
    ),
    KnowledgeQuestion(
        "If I cancel Plus do I get my money back?",
        ("kb-302",),
        "Monthly plans stay active until the end of the month you paid for, without a refund. "
        "Annual plans cancelled within 14 days of renewal are refunded in full.",
    ),
    KnowledgeQuestion(
        "How do I change my billing date?",
        ("kb-303",),
        "Your billing date is the day you subscribed. You can move it by switching between "
        "monthly and annual billing: the new plan starts right away and unused time is credited.",
    ),
    KnowledgeQuestion(
        "There's a $1 charge from Lumio on my card, what is it?",
        ("kb-304",),
        "That's a temporary authorization your bank shows when a card is added or updated. It "
        "isn't a charge and disappears within 3 to 5 business days.",
    ),
    KnowledgeQuestion(
        "Is my data stored in the EU?",
        ("kb-401",),
        "If you created your account in the EU or UK, yes: it's stored in our Frankfurt region. "
        "Other accounts are stored in Oregon, US.",
    ),
    KnowledgeQuestion(
        "How do I delete my account?",
        ("kb-402",),
        "Go to Settings > Account > Delete account. Your homes, devices and history are deleted "
        "within 30 days, and an active Lumio Plus subscription is cancelled without a refund.",
    ),
    KnowledgeQuestion(
        "Can the outdoor strip stay outside in the rain?",
        ("kb-501",),
        "Yes. The Strip Outdoor is rated IP65, so rain and water jets are fine, but it must not "
        "be submerged. Use the included weatherproof power supply.",
    ),
    KnowledgeQuestion(
        "How bright is the A19 bulb?",
        ("kb-502",),
        "The Lumio Bulb A19 gives 1100 lumens, about a 75 W incandescent, while drawing 9.5 W.",
    ),
    KnowledgeQuestion(
        "How long do the batteries last in the motion sensor?",
        ("kb-503",),
        "About 2 years on two AAA batteries.",
    ),
)

# Claims the bot sometimes adds that no document supports: the demo's hallucinations.
UNSUPPORTED_CLAIMS: tuple[str, ...] = (
    "You'll also get a $20 store credit for the trouble.",
    "All Lumio products come with a lifetime warranty.",
    "Our phone line is open 24/7 at 1-800-555-0199.",
    "This also works over 5 GHz networks since firmware 4.2.",
    "Lumio Plus members get free express shipping on every order.",
)

# Follow-ups asked later in a conversation, answered from the same knowledge base.
FOLLOW_UPS: tuple[KnowledgeQuestion, ...] = (
    KnowledgeQuestion(
        "Thanks. And how long until the refund shows up?",
        ("kb-201",),
        "Refunds reach your original payment method 5 to 10 business days after we receive the "
        "return.",
    ),
    KnowledgeQuestion(
        "ok, does that void my warranty?",
        ("kb-202",),
        "No. The warranty covers defects for 2 years from delivery (3 with Lumio Plus); it only "
        "excludes water damage and damage from incorrect wiring.",
    ),
    KnowledgeQuestion(
        "Will my schedules still work if the wifi goes down?",
        ("kb-109", "kb-102"),
        "Yes. Schedules run on the hub itself, so they keep working; the hub's ring blinks "
        "orange while it reconnects to Wi-Fi.",
    ),
)


@dataclass(frozen=True, slots=True)
class Tool:
    name: str
    description: str
    parameters: dict[str, Any]

    def json_schema(self) -> str:
        return json.dumps(
            {
                "type": "function",
                "function": {
                    "name": self.name,
                    "description": self.description,
                    "parameters": self.parameters,
                },
            }
        )


def _params(**properties: str) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {name: {"type": kind} for name, kind in properties.items()},
        "required": list(properties),
    }


TOOLS: dict[str, Tool] = {
    tool.name: tool
    for tool in (
        Tool("lookup_order", "Order status, items and tracking.", _params(order_id="string")),
        Tool(
            "create_return",
            "Open a return (RMA) for an order item.",
            _params(order_id="string", sku="string", reason="string"),
        ),
        Tool(
            "update_shipping_address",
            "Change the shipping address of an order that has not shipped.",
            _params(order_id="string", address="string"),
        ),
        Tool("get_subscription", "The customer's Lumio Plus subscription.", _params()),
        Tool("change_plan", "Switch Lumio Plus billing period.", _params(plan="string")),
        Tool("cancel_subscription", "Cancel Lumio Plus at period end.", _params()),
        Tool("get_billing_history", "Charges and authorizations.", _params(limit="integer")),
        Tool("send_invoice", "Email a PDF invoice.", _params(invoice_id="string")),
        Tool("check_device_status", "Hub and device connectivity.", _params(device_id="string")),
        Tool("check_service_status", "Cloud status for a region.", _params(region="string")),
        Tool("send_password_reset", "Email a password reset link.", _params(email="string")),
        Tool("apply_promo_code", "Apply a promotion code to the account.", _params(code="string")),
        Tool("check_inventory", "Stock and restock date for a product.", _params(sku="string")),
    )
}


@dataclass(frozen=True, slots=True)
class ToolCall:
    tool: str
    arguments: dict[str, Any]
    result: dict[str, Any]


@dataclass(frozen=True, slots=True)
class AgentTask:
    """One customer request the agent handles: the question, the tool calls, the answer."""

    question: str
    calls: tuple[ToolCall, ...]
    answer: str


@dataclass(frozen=True, slots=True)
class Customer:
    user_id: str
    email: str
    region: str
    plan: str


PRODUCTS = (
    ("LUM-A19-4PK", "Lumio Bulb A19 (4-pack)"),
    ("LUM-HUB-2", "Lumio Hub (2nd gen)"),
    ("LUM-STRIP-OUT", "Lumio Strip Outdoor"),
    ("LUM-MOTION", "Lumio Motion Sensor"),
    ("LUM-SWITCH", "Lumio Smart Switch"),
)
CARRIERS = ("UPS", "FedEx", "DHL", "USPS")
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday")


def _order_id(rng: random.Random) -> str:
    return f"LM-{rng.randint(100000, 999999)}"


def _order_status(rng: random.Random, c: Customer) -> AgentTask:
    order = _order_id(rng)
    sku, product = rng.choice(PRODUCTS)
    carrier, day = rng.choice(CARRIERS), rng.choice(DAYS)
    tracking = f"1Z{rng.randint(10**9, 10**10 - 1)}"
    question = rng.choice(
        (
            f"Where is my order {order}?",
            f"hi, order {order} still hasn't arrived",
            f"Can you check on order {order}? It's been a week.",
        )
    )
    result = {
        "order_id": order,
        "status": "shipped",
        "items": [{"sku": sku, "name": product, "quantity": 1}],
        "carrier": carrier,
        "tracking_number": tracking,
        "estimated_delivery": day,
    }
    answer = (
        f"Your order {order} ({product}) has shipped with {carrier}, tracking number {tracking}. "
        f"It's expected to arrive on {day}."
    )
    return AgentTask(question, (ToolCall("lookup_order", {"order_id": order}, result),), answer)


def _damaged_return(rng: random.Random, c: Customer) -> AgentTask:
    order = _order_id(rng)
    sku, product = rng.choice(PRODUCTS)
    rma = f"RMA-{rng.randint(10000, 99999)}"
    question = f"The {product} from order {order} arrived broken. I want a replacement."
    lookup = {
        "order_id": order,
        "status": "delivered",
        "delivered_days_ago": rng.randint(1, 6),
        "items": [{"sku": sku, "name": product, "quantity": 1}],
    }
    created = {"rma": rma, "type": "replacement", "ships_within_days": 2, "return_required": False}
    answer = (
        f"I'm sorry it arrived damaged. I've opened {rma} for a free replacement {product}, "
        "which ships within 2 business days. You don't need to send the broken one back."
    )
    return AgentTask(
        question,
        (
            ToolCall("lookup_order", {"order_id": order}, lookup),
            ToolCall(
                "create_return", {"order_id": order, "sku": sku, "reason": "damaged"}, created
            ),
        ),
        answer,
    )


def _double_charge(rng: random.Random, c: Customer) -> AgentTask:
    amount = "4.99" if c.plan != "business" else "19.00"
    history = {
        "charges": [
            {"id": f"ch_{rng.randint(10**7, 10**8)}", "amount": amount, "status": "paid"},
            {"id": f"auth_{rng.randint(10**7, 10**8)}", "amount": amount, "status": "pending"},
        ]
    }
    answer = (
        f"I checked your billing history: there is one ${amount} charge and one pending "
        f"${amount} authorization from when your card was updated. The authorization isn't a "
        "charge and will disappear within 3 to 5 business days."
    )
    return AgentTask(
        "Why was I charged twice this month??",
        (ToolCall("get_billing_history", {"limit": 5}, history),),
        answer,
    )


def _upgrade_annual(rng: random.Random, c: Customer) -> AgentTask:
    current = {"plan": "plus_monthly", "status": "active", "renews_on_day": rng.randint(1, 28)}
    changed = {"plan": "plus_annual", "price": "49.00", "credited": "2.15", "status": "active"}
    answer = (
        "Done! You're now on Lumio Plus annual at $49/year, starting today. The unused part of "
        "your monthly plan ($2.15) was credited to the first payment."
    )
    return AgentTask(
        "Can you switch me to the yearly plus plan?",
        (
            ToolCall("get_subscription", {}, current),
            ToolCall("change_plan", {"plan": "plus_annual"}, changed),
        ),
        answer,
    )


def _hub_offline(rng: random.Random, c: Customer) -> AgentTask:
    hub = f"hub-{rng.randint(1000, 9999)}"
    minutes = rng.randint(12, 300)
    device = {"device_id": hub, "online": False, "last_seen_minutes_ago": minutes, "rssi": -82}
    status = {"region": c.region, "status": "operational", "incidents": []}
    answer = (
        f"Our cloud in {c.region} is running normally, but your hub {hub} has been offline for "
        f"{minutes} minutes with a weak Wi-Fi signal (-82 dBm). Try moving it closer to your "
        "router, and make sure the router broadcasts 2.4 GHz."
    )
    return AgentTask(
        "My lights stopped responding to the app",
        (
            ToolCall("check_device_status", {"device_id": hub}, device),
            ToolCall("check_service_status", {"region": c.region}, status),
        ),
        answer,
    )


def _change_address(rng: random.Random, c: Customer) -> AgentTask:
    order = _order_id(rng)
    address = rng.choice(
        (
            "221 Pine St, Apt 4, Seattle, WA 98101",
            "18 Rue Oberkampf, 75011 Paris",
            "9 Elm Rd, Leeds",
        )
    )
    lookup = {"order_id": order, "status": "processing"}
    updated = {"order_id": order, "shipping_address": address, "status": "processing"}
    answer = f"Your order {order} hasn't shipped yet, so I've updated the address to {address}."
    return AgentTask(
        f"I need to change the delivery address for {order} to {address}",
        (
            ToolCall("lookup_order", {"order_id": order}, lookup),
            ToolCall("update_shipping_address", {"order_id": order, "address": address}, updated),
        ),
        answer,
    )


def _invoice(rng: random.Random, c: Customer) -> AgentTask:
    invoice = f"INV-{rng.randint(2024000, 2026999)}"
    history = {"charges": [{"id": invoice, "amount": "49.00", "status": "paid"}]}
    sent = {"sent_to": c.email, "invoice_id": invoice}
    return AgentTask(
        "I need an invoice for my last payment for my expense report",
        (
            ToolCall("get_billing_history", {"limit": 1}, history),
            ToolCall("send_invoice", {"invoice_id": invoice}, sent),
        ),
        f"I've emailed invoice {invoice} for $49.00 to {c.email}.",
    )


def _password_reset(rng: random.Random, c: Customer) -> AgentTask:
    return AgentTask(
        f"I'm locked out of the app, my email is {c.email}",
        (
            ToolCall(
                "send_password_reset",
                {"email": c.email},
                {"sent": True, "expires_in_minutes": 30},
            ),
        ),
        f"I've sent a password reset link to {c.email}. It's valid for 30 minutes.",
    )


def _outage(rng: random.Random, c: Customer) -> AgentTask:
    status = {
        "region": c.region,
        "status": "degraded",
        "incidents": [{"title": "Delayed voice assistant commands", "started_minutes_ago": 40}],
    }
    return AgentTask(
        "Is Lumio down? Alexa keeps saying the device isn't responding",
        (ToolCall("check_service_status", {"region": c.region}, status),),
        f"Yes, there's an ongoing incident in {c.region}: voice assistant commands are delayed "
        "since about 40 minutes ago. The app and schedules still work. Sorry for the trouble!",
    )


def _cancel(rng: random.Random, c: Customer) -> AgentTask:
    until = rng.choice(("June 30", "July 14", "August 2", "September 9"))
    return AgentTask(
        "cancel my plus subscription please",
        (
            ToolCall("get_subscription", {}, {"plan": "plus_monthly", "status": "active"}),
            ToolCall("cancel_subscription", {}, {"status": "cancelling", "active_until": until}),
        ),
        f"Your Lumio Plus subscription is cancelled. You keep Plus features until {until}, and "
        "you won't be charged again.",
    )


def _promo(rng: random.Random, c: Customer) -> AgentTask:
    code = rng.choice(("SPRING20", "WELCOME10", "LUMIOFRIEND"))
    valid = rng.random() < 0.5
    result = (
        {"applied": True, "discount": "20%", "applies_to": "next order"}
        if valid
        else {"applied": False, "reason": "expired"}
    )
    answer = (
        f"Code {code} is applied: you'll get 20% off your next order."
        if valid
        else f"Sorry, the code {code} has expired, so I couldn't apply it."
    )
    return AgentTask(
        f"Can you apply the code {code} to my account?",
        (ToolCall("apply_promo_code", {"code": code}, result),),
        answer,
    )


def _restock(rng: random.Random, c: Customer) -> AgentTask:
    sku, product = rng.choice(PRODUCTS)
    weeks = rng.randint(1, 4)
    return AgentTask(
        f"When will the {product} be back in stock?",
        (
            ToolCall(
                "check_inventory", {"sku": sku}, {"sku": sku, "in_stock": 0, "restock_weeks": weeks}
            ),
        ),
        f"The {product} is out of stock right now; we expect it back in about {weeks} "
        f"week{'s' if weeks > 1 else ''}.",
    )


AGENT_TASKS: tuple[Callable[[random.Random, Customer], AgentTask], ...] = (
    _order_status,
    _damaged_return,
    _double_charge,
    _upgrade_annual,
    _hub_offline,
    _change_address,
    _invoice,
    _password_reset,
    _outage,
    _cancel,
    _promo,
    _restock,
)

FIRST_NAMES = (
    "alice", "bruno", "chen", "dana", "emeka", "fatima", "giulia", "hiro", "ines", "jonas",
    "kavya", "liam", "maria", "noah", "olga", "priya", "quentin", "rosa", "sven", "tariq",
    "uma", "victor", "wen", "yusuf",
)  # fmt: skip
REGIONS = ("us-west", "us-east", "eu-west")
PLANS = ("free", "plus", "business")
APP_VERSIONS = ("3.8.2", "3.9.0", "3.9.1")
CHANNELS = ("web", "ios", "android")


def customers(rng: random.Random) -> list[Customer]:
    """The demo's users, each with a fixed region and plan."""
    result = []
    for name in FIRST_NAMES:
        region = rng.choices(REGIONS, weights=(4, 3, 3))[0]
        plan = rng.choices(PLANS, weights=(5, 4, 1))[0]
        result.append(Customer(f"user-{name}", f"{name}@example.com", region, plan))
    return result


CORRECT_EXPLANATIONS = (
    "The answer addresses the question directly and agrees with the reference information.",
    "All facts in the answer are supported by the context, and the customer's request is met.",
    "The response is accurate and complete for what the customer asked.",
)
INCORRECT_EXPLANATIONS = (
    "The answer does not address what the customer actually asked.",
    "The answer leaves out the key condition from the policy, so it is misleading.",
    "The response gives a different figure from the one in the reference information.",
)
HUMAN_GOOD = (
    "Clear and accurate.",
    "Resolved the issue in one reply.",
    "Good tone, right answer.",
)
HUMAN_BAD = (
    "Too vague, customer had to ask again.",
    "Made up something we don't offer.",
    "Customer got an error instead of an answer.",
)
