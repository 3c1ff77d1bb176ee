from rest_framework import serializers


class AvailableGpuSerializer(serializers.Serializer):
    model = serializers.CharField()
    vendor = serializers.CharField()
    count = serializers.IntegerField(help_text="GPUs free now")
    total = serializers.IntegerField()
    nodes = serializers.IntegerField()
    memory = serializers.CharField(help_text="per GPU, e.g. 80Gi")
    memory_bytes = serializers.IntegerField()
    location = serializers.CharField(help_text="region")
    location_group = serializers.CharField()
    cost_per_hour = serializers.CharField(allow_null=True, help_text="per GPU, e.g. '4.50 EUR'")
    cost_per_hour_value = serializers.FloatField(allow_null=True)
    currency = serializers.CharField()
    provider = serializers.CharField()
    tier = serializers.CharField()
    architecture = serializers.CharField()
    interconnect = serializers.CharField()
    interruptible = serializers.BooleanField()
    shared = serializers.BooleanField()
    fp32_tflops = serializers.FloatField(allow_null=True)


class ResourceQuerySerializer(serializers.Serializer):
    model = serializers.CharField(required=False, max_length=60)
    location = serializers.CharField(required=False, max_length=60)
    min_memory = serializers.CharField(required=False, max_length=20, help_text="per GPU quantity, e.g. 40Gi")
    provider = serializers.CharField(required=False, max_length=100)
    tier = serializers.CharField(required=False, max_length=20)
    max_price = serializers.DecimalField(required=False, max_digits=10, decimal_places=4, min_value=0)
    available_only = serializers.BooleanField(required=False, default=False)
    limit = serializers.IntegerField(required=False, min_value=1, max_value=500)
    offset = serializers.IntegerField(required=False, min_value=0, max_value=10**9)
    format = serializers.CharField(required=False)
