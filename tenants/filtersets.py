import django_filters

from .models import ApiToken


class ApiTokenFilterSet(django_filters.FilterSet):
    name = django_filters.CharFilter(lookup_expr="icontains")

    class Meta:
        model = ApiToken
        fields = ["name"]
