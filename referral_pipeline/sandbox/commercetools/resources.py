"""The five commercetools resources the simulator serves: collection specs, reference type ids,
key lookups, and the top-level fields predicates and sorts may name (commercetools-api-reference
``types/customer/Customer.raml``, ``types/order/Order.raml``, ``types/discount-code/DiscountCode.raml``,
``types/cart-discount/CartDiscount.raml``, ``types/type/Type.raml``)."""
from __future__ import annotations

from ..core import stamps
from ..core.store import CollectionSpec
from .predicates import Schema
from .updates import ORDER_STATES, PAYMENT_STATES, SHIPMENT_STATES

RESOURCES = ("customers", "orders", "discount-codes", "cart-discounts", "types")
UPDATABLE = ("customers", "orders", "types")

SPECS = {name: CollectionSpec(name, key="id", stamp="lastModifiedAt", stamp_format=stamps.fmt_iso_millis_z,
                              version="version", created="createdAt")
         for name in RESOURCES}

# reference typeId <-> collection
TYPE_IDS = {"customers": "customer", "orders": "order", "discount-codes": "discount-code",
            "cart-discounts": "cart-discount", "types": "type"}
COLLECTION_OF_TYPE_ID = {v: k for k, v in TYPE_IDS.items()}

# GET/POST /{projectKey}/<resource>/<segment>={value}: the path segment and the field it matches
KEY_ROUTES = {"customers": ("key", "key"), "orders": ("order-number", "orderNumber"),
              "discount-codes": ("key", "key"), "cart-discounts": ("key", "key"), "types": ("key", "key")}

_COMMON = {"id", "version", "key", "createdAt", "lastModifiedAt", "createdBy", "lastModifiedBy", "custom"}
FIELDS = {
    "customers": _COMMON | {
        "customerNumber", "externalId", "email", "lowercaseEmail", "password", "firstName", "lastName",
        "middleName", "title", "salutation", "dateOfBirth", "companyName", "vatId", "addresses",
        "defaultShippingAddressId", "shippingAddressIds", "defaultBillingAddressId", "billingAddressIds",
        "isEmailVerified", "customerGroup", "customerGroupAssignments", "locale", "stores",
        "authenticationMode"},
    "orders": _COMMON | {
        "orderNumber", "purchaseOrderNumber", "customerId", "customerEmail", "customerGroup", "anonymousId",
        "businessUnit", "store", "lineItems", "customLineItems", "totalPrice", "taxedPrice",
        "taxedShippingPrice", "discountOnTotalPrice", "taxMode", "taxRoundingMode", "taxCalculationMode",
        "inventoryMode", "billingAddress", "shippingAddress", "shippingMode", "shippingKey", "shippingInfo",
        "shippingRateInput", "shippingCustomFields", "shipping", "itemShippingAddresses", "discountCodes",
        "directDiscounts", "refusedGifts", "paymentInfo", "country", "locale", "origin", "cart", "quote",
        "recurringOrder", "orderState", "shipmentState", "paymentState", "state", "syncInfo", "returnInfo",
        "lastMessageSequenceNumber", "completedAt"},
    "discount-codes": _COMMON | {
        "code", "name", "description", "cartDiscounts", "cartPredicate", "isActive", "references",
        "maxApplications", "maxApplicationsPerCustomer", "groups", "validFrom", "validUntil",
        "applicationVersion", "stores"},
    "cart-discounts": _COMMON | {
        "name", "description", "value", "cartPredicate", "target", "sortOrder", "stores", "isActive",
        "validFrom", "validUntil", "requiresDiscountCode", "references", "stackingMode", "discountGroup"},
    "types": (_COMMON - {"custom"}) | {"name", "description", "resourceTypeIds", "fieldDefinitions"},
}

ENUMS = {
    "orders": {"orderState": ("OrderState", ORDER_STATES), "paymentState": ("PaymentState", PAYMENT_STATES),
               "shipmentState": ("ShipmentState", SHIPMENT_STATES)},
}


def schema(resource: str, strict: bool) -> Schema:
    """What a ``where`` / ``sort`` on this resource may name (``strict=False``: any field)."""
    return Schema(fields=frozenset(FIELDS[resource]) if strict else None, enums=ENUMS.get(resource))
