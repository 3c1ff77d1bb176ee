from __future__ import annotations

from rest_framework.pagination import LimitOffsetPagination
from rest_framework.response import Response


class FlarePagination(LimitOffsetPagination):
    """`{"<items_key>": [...], "count", "next", "previous"}` — the list key is the view's `results_key`."""

    default_limit = 50
    max_limit = 500

    def get_paginated_response_for(self, key: str, data):
        return Response({key: data, "count": self.count, "next": self.get_next_link(),
                         "previous": self.get_previous_link()})

    def get_paginated_response(self, data):
        return self.get_paginated_response_for("results", data)

    def get_paginated_response_schema_for(self, key: str, schema):
        return {
            "type": "object",
            "required": [key, "count"],
            "properties": {
                key: schema,
                "count": {"type": "integer"},
                "next": {"type": "string", "nullable": True, "format": "uri"},
                "previous": {"type": "string", "nullable": True, "format": "uri"},
            },
        }
