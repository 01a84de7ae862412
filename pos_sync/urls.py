from django.urls import path

from pos_sync import apis

urlpatterns = [
    path("api/pos/orders/<int:order_id>/close/", apis.OrderCloseApi.as_view(), name="pos-order-close"),
    path("api/pos/orders/<int:order_id>/sync/", apis.OrderSyncApi.as_view(), name="pos-order-sync"),
    path("api/pos/sync-jobs/", apis.SyncJobListApi.as_view(), name="pos-sync-job-list"),
    path("api/pos/sync-jobs/<int:job_id>/requeue/", apis.SyncJobRequeueApi.as_view(), name="pos-sync-job-requeue"),
]
