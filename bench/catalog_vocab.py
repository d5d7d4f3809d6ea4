"""Vocabularies for a realistic generated catalog of the fictitious city 海河市.

Each provider publishes on a few subjects; a subject names its theme and industry codes (from
``kaifang.catalog.defaults``), its keywords and the fields its data holds. The generator in
``search_bench.py`` combines them with districts, years and title suffixes, so titles repeat
words the way a real city catalog does (many entries about 公交, several providers on 停车 …).
"""

from __future__ import annotations

from typing import NamedTuple


class Subject(NamedTuple):
    name: str
    theme: str
    industry: str
    keywords: tuple[str, ...]
    fields: tuple[str, ...]


class Provider(NamedTuple):
    slug: str
    name: str
    org_type: str
    subjects: tuple[Subject, ...]


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


CITY = "海河市"
DISTRICTS = _words("海城区 河东区 河西区 南湖区 北塘区 临港区 西岸区 高新区 经开区 滨河新区 青山县 白沙县")
YEARS = tuple(range(2019, 2027))
SUFFIXES = _words("信息 数据 名录 统计 分布 目录 情况 清单 汇总表 查询")
PERIODS = ("年度", "季度", "月度", "")

# provider line: slug | name | org type
#     subject line: name | theme industry | keywords | fields of its data
_CATALOG = """
jtw | 海河市交通运输委员会 | department
    公交线路 | jtys G | 公交 线路 站点 出行 | 线路名称 起点站 终点站 首班时间 末班时间 票价
    公交站点 | jtys G | 公交 站点 经纬度 站牌 | 站点名称 所属线路 经度 纬度 所在道路
    公交车辆实时到站 | jtys G | 公交 实时 到站 预测 | 线路编号 车辆编号 当前站点 预计到站时间
    出租汽车企业 | jtys G | 出租车 巡游车 企业 运力 | 企业名称 车辆数 经营范围 许可证号
    网络预约出租汽车经营许可 | jtys G | 网约车 许可 平台 | 平台名称 许可证号 有效期 服务电话
    公共停车场泊位 | jtys G | 停车 停车场 泊位 收费 | 停车场名称 地址 泊位数 收费标准 开放时间
    道路运输经营业户 | jtys G | 道路运输 货运 客运 业户 | 业户名称 经营范围 车辆数 许可证号
    港口货物吞吐量 | jtys G | 港口 吞吐量 集装箱 货运 | 统计月份 货物吞吐量 集装箱吞吐量 同比增长
    城市道路交通拥堵指数 | jtys G | 交通 拥堵 指数 路况 | 路段名称 时段 拥堵指数 平均车速
    新能源汽车充电设施 | jtys D | 充电桩 充电站 新能源 汽车 | 站点名称 地址 快充数量 慢充数量 运营单位
gjjt | 海河公交集团有限公司 | utility
    公交线路走向 | jtys G | 公交 线路 走向 站序 | 线路名称 方向 站序 站点名称
    公交车辆实时位置 | jtys G | 公交 实时 位置 车辆 | 车辆编号 线路 经度 纬度 采集时间
    公交客流 | jtys G | 公交 客流 刷卡 乘客 | 线路名称 日期 客运量 高峰小时客流
    公交票价与换乘优惠 | jtys G | 公交 票价 换乘 优惠 | 线路名称 票制 全程票价 换乘优惠
    公交场站 | jtys G | 公交 场站 首末站 枢纽 | 场站名称 地址 停车位 线路数
wjw | 海河市卫生健康委员会 | department
    医疗机构 | ylws Q | 医疗机构 医院 诊所 执业 | 机构名称 机构类别 等级 地址 诊疗科目 联系电话
    三级医院 | ylws Q | 医院 三级 床位 科室 | 医院名称 等级 床位数 重点专科 地址
    社区卫生服务中心 | ylws Q | 社区 卫生 基层 医疗 | 机构名称 所属街道 服务人口 地址 电话
    预防接种门诊 | ylws Q | 疫苗 接种 门诊 预防 | 门诊名称 地址 接种时间 可接种疫苗
    卫生技术人员 | ylws Q | 医师 护士 卫生 人员 | 统计年度 执业医师数 注册护士数 每千人口医师数
    法定传染病疫情 | ylws Q | 传染病 疫情 发病 报告 | 病种 发病数 死亡数 发病率
    院前急救站点 | ylws Q | 急救 120 站点 救护车 | 站点名称 地址 救护车数量 服务范围
    妇幼保健机构 | ylws Q | 妇幼 保健 孕产妇 儿童 | 机构名称 服务项目 地址 电话
jw | 海河市教育委员会 | department
    中小学学校 | jywh P | 学校 中小学 小学 初中 高中 | 学校名称 办学类型 学段 地址 联系电话
    幼儿园 | jywh P | 幼儿园 学前 托育 | 幼儿园名称 办园性质 等级 班级数 地址
    义务教育学区划分 | jywh P | 学区 入学 义务教育 划片 | 学校名称 对口小区 招生范围
    学校招生计划 | jywh P | 招生 计划 学校 升学 | 学校名称 招生人数 招生范围 报名时间
    民办学校 | jywh P | 民办 学校 办学许可 | 学校名称 举办者 办学许可证号 办学层次
    校外培训机构 | jywh P | 培训 机构 校外 白名单 | 机构名称 培训类别 地址 收费方式
    职业院校专业设置 | jywh P | 职业 院校 专业 技能 | 院校名称 专业名称 学制 招生规模
scjg | 海河市市场监督管理委员会 | department
    企业登记 | scjg L | 企业 登记 注册 市场主体 | 企业名称 统一社会信用代码 法定代表人 成立日期 注册资本
    个体工商户 | scjg F | 个体工商户 登记 经营 | 名称 经营者 经营场所 经营范围
    食品经营许可 | scjg H | 食品 许可 餐饮 经营 | 经营者名称 许可证编号 经营项目 有效期至
    药品零售企业 | scjg F | 药品 药店 零售 许可 | 企业名称 许可证号 地址 执业药师
    产品质量监督抽查 | scjg C | 产品质量 抽查 抽检 不合格 | 产品名称 生产企业 抽检结果 不合格项目
    企业经营异常名录 | xyfw L | 企业 经营异常 名录 信用 | 企业名称 列入原因 列入日期 决定机关
    行政处罚 | xyfw S | 行政处罚 信用 违法 | 当事人名称 违法行为 处罚依据 处罚结果 决定日期
    特种设备使用登记 | aqsc M | 特种设备 电梯 锅炉 登记 | 设备类别 使用单位 登记证号 下次检验日期
sthj | 海河市生态环境局 | department
    空气质量 | sthj N | 空气质量 AQI PM2.5 污染 | 监测站点 AQI PM2.5 PM10 首要污染物 发布时间
    空气质量自动监测站点 | sthj N | 空气质量 监测 站点 | 站点名称 经度 纬度 监测项目
    地表水环境质量 | sthj N | 水质 地表水 断面 水环境 | 断面名称 所在河流 水质类别 主要污染指标
    重点排污单位 | sthj N | 排污 企业 污染源 重点 | 单位名称 排放类别 主要污染物 排放口数量
    建设项目环境影响评价审批 | sthj N | 环评 审批 建设项目 | 项目名称 建设单位 审批文号 审批日期
    城市区域环境噪声 | sthj N | 噪声 声环境 监测 | 测点 昼间等效声级 夜间等效声级 功能区
    集中式饮用水水源地水质 | sthj N | 饮用水 水源地 水质 | 水源地名称 监测月份 达标情况
ghzy | 海河市规划和自然资源局 | department
    国土空间规划 | cjzf N | 规划 国土空间 用地 | 规划名称 批复文号 规划期限 范围
    国有建设用地供应 | zyny K | 土地 出让 供地 建设用地 | 地块编号 位置 面积 用途 成交价
    标准地名地址 | dlkj M | 地名 地址 门牌 道路 | 地名 类别 所在区 经度 纬度
    建设工程规划许可 | cjzf E | 规划许可 建设工程 审批 | 项目名称 建设单位 许可证号 建筑面积
    地质灾害隐患点 | aqsc N | 地质灾害 隐患 滑坡 | 隐患点名称 类型 威胁人数 防治措施
    不动产登记办事网点 | cjzf K | 不动产 登记 网点 办事 | 网点名称 地址 办公时间 电话
jgzd | 海河市公安局交通警察总队 | department
    道路交通事故 | ggaq S | 交通事故 事故 道路 安全 | 月份 事故起数 死亡人数 受伤人数
    交通违法处理网点 | ggaq S | 违法 处理 网点 交警 | 网点名称 地址 办公时间 业务范围
    机动车保有量 | jtys S | 机动车 保有量 汽车 登记 | 统计月份 机动车总量 新能源汽车 私人汽车
    道路施工占道 | jtys S | 施工 占道 道路 绕行 | 道路名称 占道范围 起止时间 绕行建议
    交通信号灯路口 | jtys S | 信号灯 路口 交通 控制 | 路口名称 经度 纬度 控制方式
rsj | 海河市人力资源和社会保障局 | department
    社会保险参保 | sbjy S | 社保 参保 养老保险 医疗保险 | 险种 参保人数 统计月份 同比
    职业技能培训机构 | sbjy P | 培训 职业技能 机构 就业 | 机构名称 培训工种 地址 联系电话
    招聘岗位 | sbjy L | 招聘 就业 岗位 用工 | 单位名称 岗位名称 招聘人数 薪资范围 工作地点
    人力资源服务机构 | sbjy L | 人力资源 服务 中介 许可 | 机构名称 许可证号 服务范围 地址
    定点医疗机构 | sbjy Q | 医保 定点 医疗机构 药店 | 机构名称 类别 等级 地址
whly | 海河市文化和旅游局 | department
    A级旅游景区 | lyzs R | 景区 旅游 A级 门票 | 景区名称 等级 地址 开放时间 门票价格
    星级饭店 | lyzs H | 饭店 酒店 星级 住宿 | 饭店名称 星级 客房数 地址 电话
    旅行社 | lyzs L | 旅行社 许可 旅游 | 旅行社名称 许可证号 业务范围 地址
    公共图书馆 | whxx R | 图书馆 阅读 借阅 | 图书馆名称 地址 开放时间 藏书量
    博物馆 | whxx R | 博物馆 展览 文物 | 博物馆名称 类型 地址 开放时间 是否免费
    非物质文化遗产项目 | whxx R | 非遗 非物质文化遗产 传承人 | 项目名称 类别 级别 保护单位
    节假日旅游客流 | lyzs R | 旅游 客流 节假日 游客 | 景区名称 日期 接待人次 同比
qxj | 海河市气象局 | department
    天气预报 | qxfw M | 天气 预报 气温 降水 | 发布时间 区域 天气现象 最高气温 最低气温 风向风力
    气象观测站 | qxfw M | 气象 观测 站点 自动站 | 站名 站号 经度 纬度 海拔
    气象灾害预警信号 | qxfw M | 预警 暴雨 大风 高温 气象灾害 | 预警类型 等级 发布时间 影响区域
    逐日降水量 | qxfw M | 降水 雨量 气象 观测 | 站号 日期 降水量
swjt | 海河水务集团有限公司 | utility
    供水营业网点 | shfw D | 供水 营业厅 网点 缴费 | 网点名称 地址 营业时间 服务电话
    计划停水通知 | shfw D | 停水 供水 通知 维修 | 停水区域 开始时间 恢复时间 原因
    出厂水水质 | shfw D | 水质 自来水 供水 检测 | 水厂名称 检测日期 浊度 余氯 达标情况
    城镇污水处理厂 | zyny N | 污水 处理厂 排放 | 处理厂名称 设计规模 实际处理量 排放标准
gdgs | 海河供电有限公司 | utility
    计划停电 | shfw D | 停电 检修 供电 通知 | 停电区域 停电时间 恢复时间 停电原因
    电动汽车充电站 | zyny D | 充电站 充电桩 新能源 汽车 | 充电站名称 地址 充电桩数量 收费标准
    供电营业厅 | shfw D | 供电 营业厅 电费 网点 | 营业厅名称 地址 营业时间 电话
    全社会用电量 | zyny D | 用电量 电力 能源 | 月份 全社会用电量 工业用电量 居民用电量
rqjt | 海河燃气集团有限公司 | utility
    燃气营业网点 | shfw D | 燃气 营业厅 网点 缴费 | 网点名称 地址 营业时间 服务电话
    居民用气价格 | shfw D | 燃气 天然气 价格 阶梯 | 用户类别 阶梯 单价 执行日期
    燃气管网维修通知 | shfw D | 燃气 停气 维修 | 影响区域 停气时间 恢复时间
wlxh | 海河市物流与供应链协会 | association
    物流企业 | smlt G | 物流 企业 仓储 运输 | 企业名称 经营类别 等级 地址
    冷链物流设施 | smlt G | 冷链 冷库 物流 仓储 | 设施名称 库容 温区 地址
    快递服务网点 | smlt G | 快递 网点 寄件 驿站 | 网点名称 品牌 地址 营业时间
mzj | 海河市民政局 | department
    养老机构 | shjz Q | 养老 养老院 床位 老年人 | 机构名称 性质 床位数 收费标准 地址
    社会组织 | jgtt S | 社会组织 社团 登记 民办非企业 | 组织名称 类型 登记证号 业务主管单位
    婚姻登记机关 | shfw O | 婚姻 登记 结婚 离婚 | 登记机关名称 地址 办公时间 电话
    最低生活保障 | shjz S | 低保 救助 保障 标准 | 统计月份 保障人数 保障金额 保障标准
    殡葬服务机构 | shfw O | 殡葬 公墓 殡仪馆 | 机构名称 类型 地址 服务项目
zjw | 海河市住房和城乡建设委员会 | department
    商品房预售许可 | cjzf K | 商品房 预售 许可 楼盘 | 项目名称 开发企业 预售许可证号 套数 面积
    保障性租赁住房 | cjzf K | 保障房 租赁 住房 公租房 | 项目名称 房源套数 户型 租金标准 地址
    物业服务企业 | cjzf K | 物业 企业 小区 服务 | 企业名称 管理项目数 服务等级 联系电话
    建筑业企业资质 | cjzf E | 建筑 资质 施工 企业 | 企业名称 资质类别 等级 证书编号
    老旧小区改造 | cjzf E | 老旧小区 改造 加装电梯 | 小区名称 改造内容 开工时间 完工时间
yjj | 海河市应急管理局 | department
    应急避难场所 | aqsc S | 避难 应急 场所 疏散 | 场所名称 地址 面积 可容纳人数
    危险化学品经营企业 | aqsc F | 危险化学品 危化品 许可 | 企业名称 许可证号 经营方式 有效期
    安全生产许可 | aqsc B | 安全生产 许可 矿山 | 企业名称 许可范围 证书编号 有效期
    生产安全事故 | aqsc S | 安全事故 生产 统计 | 月份 事故起数 死亡人数 行业
czj | 海河市财政局 | department
    财政预算 | csjr S | 预算 财政 收入 支出 | 科目名称 预算数 执行数 年度
    政府采购 | csjr S | 政府采购 中标 招标 | 项目名称 采购单位 中标供应商 中标金额
    政府债务 | csjr S | 债务 政府债券 限额 | 年度 债务限额 债务余额 新增债券
tjj | 海河市统计局 | department
    地区生产总值 | jjjs S | GDP 生产总值 经济 增长 | 指标 季度 绝对值 增速
    居民消费价格指数 | jjjs S | CPI 价格 消费 物价 | 月份 总指数 食品 居住 交通通信
    常住人口 | jjjs S | 人口 常住 户籍 | 年度 常住人口 城镇人口 出生率
    规模以上工业增加值 | gyny C | 工业 增加值 规模以上 | 月份 增加值增速 主要行业
kjj | 海河市科学技术局 | department
    高新技术企业 | kjcx M | 高新技术 企业 认定 科技 | 企业名称 证书编号 发证日期 技术领域
    科技型中小企业 | kjcx M | 科技型 中小企业 入库 | 企业名称 入库编号 所属行业
    众创空间与孵化器 | kjcx M | 孵化器 众创空间 创业 | 载体名称 级别 面积 在孵企业数
    技术合同登记 | kjcx M | 技术合同 成交额 技术交易 | 月份 合同数 成交额 技术领域
sfj | 海河市司法局 | department
    律师事务所 | flfw L | 律师 律所 法律服务 | 律所名称 执业许可证号 地址 律师人数
    公证机构 | flfw L | 公证 公证处 法律 | 机构名称 地址 电话 业务范围
    法律援助工作站 | flfw S | 法律援助 援助 工作站 | 工作站名称 地址 服务时间 电话
    人民调解委员会 | flfw S | 调解 人民调解 纠纷 | 调解委员会名称 所属街道 调解员人数
tyj | 海河市体育局 | department
    公共体育场馆 | whxx R | 体育场馆 健身 场馆 开放 | 场馆名称 地址 开放时间 收费标准
    全民健身设施 | whxx R | 健身 设施 路径 公园 | 设施名称 所在社区 器材数量
    体育赛事活动 | whxx R | 体育 赛事 马拉松 比赛 | 赛事名称 举办时间 地点 主办单位
nyw | 海河市农业农村委员会 | department
    农民专业合作社 | gyny A | 合作社 农民 农业 | 合作社名称 主营产品 成员数 地址
    家庭农场 | gyny A | 家庭农场 农业 经营主体 | 农场名称 经营规模 主营产品
    农产品质量安全检测 | gyny A | 农产品 检测 质量安全 农药残留 | 样品名称 检测项目 检测结果 抽样地点
    农作物种子经营备案 | gyny A | 种子 经营 备案 | 经营者名称 品种 备案日期
"""


def _parse(table: str) -> tuple[Provider, ...]:
    providers: list[Provider] = []
    for line in table.strip().splitlines():
        cells = [c.strip() for c in line.split("|")]
        if not line.startswith(" "):
            providers.append(Provider(cells[0], cells[1], cells[2], ()))
            continue
        theme, industry = cells[1].split()
        subject = Subject(cells[0], theme, industry, _words(cells[2]), _words(cells[3]))
        last = providers[-1]
        providers[-1] = last._replace(subjects=(*last.subjects, subject))
    return tuple(providers)


PROVIDERS = _parse(_CATALOG)

SUMMARY_OPENINGS = (
    "{provider}依职责采集的{area}{subject}{suffix}",
    "本数据集汇集{area}{subject}相关{suffix}",
    "{area}{subject}{suffix}，由{provider}维护",
    "反映{area}{subject}基本情况的{suffix}",
)
SUMMARY_CLOSINGS = (
    "可用于便民查询、出行规划与研究分析。",
    "数据来源于业务系统，经脱敏和质量核验后开放。",
    "适用于公众查询、企业应用开发和学术研究。",
    "数据按统一标准整理，字段含义详见数据字典。",
    "如发现数据有误，可通过平台纠错渠道反馈。",
)
CONTACT_NAMES = _words("王磊 李娜 张伟 刘洋 陈静 杨帆 赵敏 黄涛 周婷 吴强 徐丽 孙浩")
OPEN_CONDITIONS = (
    "仅限科研及公益用途，需说明使用目的并签订数据使用协议。",
    "申请单位需具备相应数据安全保护能力，使用期限不超过一年。",
    "须在平台受控环境中使用，成果发布前报提供单位审核。",
)
CLOSED_REASONS = (
    ("涉及个人隐私", "《中华人民共和国个人信息保护法》第十三条"),
    ("涉及商业秘密", "《中华人民共和国反不正当竞争法》第九条"),
    ("涉及公共安全", "《中华人民共和国数据安全法》第二十一条"),
)
